"""`dockguard hookspec validate|merge|install`: check, combine and install hook-specs.

The guide makes users merge several specs by hand; `merge` does it in order and validates
the result. `install` is one sub-step of `dockguard install` (the one installer, which also
writes daemon.json, the units and the policy): only the hook programs and the runtime wrapper,
for a host where daemon.json is managed by hand.
"""
from __future__ import annotations

import json
import os
import sys

from hookbin import install as inst
from hookbin import oci
from hookbin import policy as hookpolicy
from hookbin import spec as hookspec


def _policy(args):
    """The [hookspec] policy to judge by (--policy, else /etc/dockguard/policy.toml if present)."""
    try:
        return hookpolicy.load(args.policy)
    except hookpolicy.PolicyError as exc:
        print(f"dockguard: error: {exc}", file=sys.stderr)
        return None


def cmd_validate(args) -> int:
    policy = _policy(args)
    if policy is None:
        return 1
    bad = 0
    for path in args.files:
        try:
            hookspec.load_spec(path, args.docker_root, policy)
        except hookspec.SpecError as exc:
            bad += 1
            for problem in exc.problems:
                print(f"dockguard: error: {problem}", file=sys.stderr)
        else:
            print(f"{path}: ok")
    return 1 if bad else 0


def cmd_merge(args) -> int:
    policy = _policy(args)
    if policy is None:
        return 1
    try:
        merged = hookspec.load_specs(args.files, args.docker_root, policy)
    except hookspec.SpecError as exc:
        for problem in exc.problems:
            print(f"dockguard: error: {problem}", file=sys.stderr)
        print("dockguard: error: nothing written", file=sys.stderr)
        return 1
    if args.output:
        if not os.path.isabs(args.output):
            print(f"dockguard: error: --output must be an absolute path: {args.output}", file=sys.stderr)
            return 1
        oci.write_json_atomic(args.output, merged)
        print(f"{args.output}: merged {len(args.files)} specs")
    else:
        json.dump(merged, sys.stdout, indent=4)
        sys.stdout.write("\n")
    return 0


def cmd_install(args) -> int:
    if os.geteuid() != 0:
        print("dockguard: error: install must run as root (hooks must be root-owned)", file=sys.stderr)
        return 1
    try:
        hooks = inst.install_hooks(args.docker_root, args.python, policy=args.policy)
        runtime = inst.install_runtime(args.bin_dir, args.runc, args.python, docker_root=args.docker_root)
    except (inst.InstallError, OSError) as exc:
        print(f"dockguard: error: {exc}", file=sys.stderr)
        return 1
    for path in hooks + [runtime]:
        print(f"installed {path}")
    entry = inst.runtime_config(runtime, args.docker_root, args.hook_spec, policy=args.policy)
    print("\nAdd to daemon.json, then restart dockerd:")
    print(json.dumps({"runtimes": {"dockguard": entry}, "default-runtime": "dockguard"}, indent=2))
    return 0


def register(sub, name):
    p = sub.add_parser(name, help="validate, merge and install hook-specs (OCI hooks via dockguard-runtime)",
                       description=__doc__.splitlines()[0])
    hsub = p.add_subparsers(dest="hookspec_cmd", required=True, metavar="COMMAND")

    def root_opt(q):
        q.add_argument("--docker-root", default=hookspec.DEFAULT_DOCKER_ROOT,
                       help="Docker Root Dir (hooks must live in DIR/hooks; default %(default)s)")
        q.add_argument("--policy", metavar="FILE",
                       help="dockguard policy whose [hookspec] section judges the specs "
                            f"(default: {hookpolicy.DEFAULT_POLICY_PATH} if present, else built-in)")

    v = hsub.add_parser("validate", help="check spec files against the guide's rules")
    v.add_argument("files", nargs="+", metavar="FILE", help="hook-spec files to check")
    root_opt(v)
    v.set_defaults(func=cmd_validate)

    m = hsub.add_parser("merge", help="merge spec files in order into one (validated)")
    m.add_argument("files", nargs="+", metavar="FILE", help="hook-spec files, merged in this order")
    m.add_argument("-o", "--output", help="write here (atomically) instead of stdout")
    root_opt(m)
    m.set_defaults(func=cmd_merge)

    i = hsub.add_parser("install", help="sub-step of `dockguard install`: only the hook programs and "
                                        "dockguard-runtime, printing the daemon.json to add by hand "
                                        "(use `dockguard install` for the whole suite)")
    root_opt(i)
    i.add_argument("--bin-dir", default="/usr/local/bin", help="where dockguard-runtime goes (%(default)s)")
    i.add_argument("--runc", help="the real runc (default: found in /usr/sbin, /usr/bin, PATH)")
    i.add_argument("--python", help="interpreter for the hooks (default: this one, resolved)")
    i.add_argument("--hook-spec", help="daemon-wide spec, only for the printed daemon.json snippet")
    i.set_defaults(func=cmd_install)
