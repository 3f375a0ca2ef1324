"""`dockguard authz serve|check|check-policy|rules|default-policy`."""
from __future__ import annotations

import json
import os
import sys

from dockguard.clitools import add_json, fail, print_json, read_input

DOCKER_HOST_HELP = ("daemon URL for lookups (default: $DOCKER_HOST, else "
                    "unix:///var/run/docker.sock); rules that need a lookup deny when it fails")
WORKER_CLASSES = ("gevent", "gthread", "sync")


def register(sub, name):
    p = sub.add_parser(name, help="the Docker authorization plugin")
    s = p.add_subparsers(dest="authz_cmd", required=True, metavar="COMMAND")

    serve = s.add_parser("serve", help="serve the plugin on a unix socket")
    serve.add_argument("--socket",
                       help="unix socket path; under /run/docker/plugins/NAME.sock dockerd finds it "
                            "as --authorization-plugin=NAME (not needed when systemd passes the "
                            "socket: dockguard-authz.socket)")
    serve.add_argument("--policy", metavar="FILE", help="TOML policy file (default: the built-in policy); "
                                                        "SIGHUP reloads it in place")
    serve.add_argument("--docker-host", help=DOCKER_HOST_HELP)
    serve.add_argument("--plugin-name", action="append", default=[],
                       help="names this plugin is known by (protected from disable/remove)")
    serve.add_argument("--worker-class", default="gevent", choices=WORKER_CLASSES,
                       help="gevent (the only safe one): sync and gthread deadlock once lookups fill "
                            "every worker (authz/serve.py) and are refused unless --benchmark-only")
    serve.add_argument("--benchmark-only", action="store_true",
                       help="accept --worker-class sync or gthread, for bench/bench_authz.py's comparison")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes (default 1: one process keeps the in-flight table exact)")
    serve.add_argument("--threads", type=int, default=8, help="threads per gthread worker (benchmark only)")
    serve.add_argument("--worker-tmp-dir", default=os.environ.get("RUNTIME_DIRECTORY"),
                       help="gunicorn's worker heartbeat dir (default: $RUNTIME_DIRECTORY under "
                            "systemd, else the system temp dir)")
    serve.set_defaults(func=cmd_serve)

    check = s.add_parser("check", help="dry-run the policy against a request (the JSON dockerd sends)")
    check.add_argument("request", nargs="?", default="-", help="file with the AuthZReq JSON, or - for stdin")
    check.add_argument("--policy", metavar="FILE", help="TOML policy file (default: the built-in policy)")
    check.add_argument("--docker-host", help=DOCKER_HOST_HELP)
    add_json(check)
    check.set_defaults(func=cmd_check)

    cp = s.add_parser("check-policy", help="validate a policy file without serving (exit 1 when invalid)")
    cp.add_argument("policy", metavar="FILE", help="the TOML policy file")
    add_json(cp)
    cp.set_defaults(func=cmd_check_policy)

    rules = s.add_parser("rules", help="list the rules with their level under a policy")
    rules.add_argument("--policy", metavar="FILE", help="TOML policy file (default: the built-in policy)")
    add_json(rules)
    rules.set_defaults(func=cmd_rules)

    pol = s.add_parser("default-policy", help="print the built-in policy (a starting point)")
    pol.add_argument("--profile", default="guide", choices=("guide", "cis"),
                     help="cis: the CIS Docker Benchmark profile (docs/cis.md)")
    pol.set_defaults(func=lambda args: print(
        __import__("authz.policy", fromlist=["x"]).profile_text(args.profile), end=""))


class _Bad(Exception):
    pass


def _policy(path):
    from .policy import PolicyError, load
    try:
        return load(path)
    except PolicyError as exc:
        raise _Bad(str(exc)) from None


def cmd_serve(args) -> int:
    from .policy import PolicyError, load
    from .serve import serve, systemd_socket
    if not args.socket and not systemd_socket():
        return fail("authz serve: --socket is required (unless systemd passes the socket)", 2)
    if args.worker_class != "gevent" and not args.benchmark_only:
        return fail(f"authz serve: --worker-class {args.worker_class} deadlocks once lookups fill every "
                    "worker (each lookup is a nested request to this plugin): use gevent", 2)
    try:
        state = {"policy": _policy(args.policy)}  # fail before binding the socket
    except _Bad as exc:
        return fail(str(exc))
    names = set(args.plugin_name)
    base = os.path.basename(args.socket or "")
    if base.endswith(".sock"):
        names.add(base[:-5])
    docker_host = args.docker_host

    def build(policy, inflight=None):
        from .audit import AuditLog
        from .context import DaemonClient, request_contexts
        from .engine import Engine
        daemon = DaemonClient(docker_host, timeout=policy.lookup_timeout)
        engine = Engine(policy, request_contexts(policy, daemon, self_names=frozenset(names)), AuditLog())
        if inflight is not None:  # requests admitted under the old policy still finish
            engine.inflight = inflight
        return engine

    def rebuild(old):  # in the worker, on SIGHUP
        return build(load(args.policy), old.inflight)

    def factory():  # in each (re)spawned worker: the master's last good policy
        from .app import create_app
        return create_app(build(state["policy"]), rebuild if args.policy else None)

    def on_hup():  # in the master: a worker respawned later starts with the new policy
        if not args.policy:
            return
        try:
            state["policy"] = load(args.policy)
        except PolicyError as exc:
            print(f"dockguard authz: reload failed, keeping the last good policy: {exc}",
                  file=sys.stderr, flush=True)

    from dockguard import __version__
    pol = state["policy"]
    print(json.dumps({"dockguard": "authz", "version": __version__,
                      "socket": args.socket or "(from systemd)", "policy": pol.source,
                      "policy_hash": pol.policy_hash, "mode": pol.mode,
                      "worker_class": args.worker_class}), flush=True)
    serve(args.socket, factory, worker_class=args.worker_class, workers=args.workers,
          threads=args.threads, on_hup=on_hup, worker_tmp_dir=args.worker_tmp_dir)
    return 0


def cmd_check(args) -> int:
    import io

    from .audit import AuditLog
    from .context import DaemonClient, request_contexts
    from .engine import Engine
    try:
        policy = _policy(args.policy)
        data = read_input(args.request)
    except _Bad as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"cannot read request {args.request}: {exc.strerror}")
    log = io.StringIO()
    daemon = DaemonClient(args.docker_host, timeout=policy.lookup_timeout)
    engine = Engine(policy, request_contexts(policy, daemon), AuditLog(log))
    decision = engine.request(data)
    audit = log.getvalue().strip().splitlines()
    out = {"Allow": decision.allow, "Msg": decision.msg, "Rules": list(decision.rules)}
    if audit:
        out["Audit"] = json.loads(audit[-1])
    if args.json:
        print_json(out)
    elif decision.allow:
        rec = out.get("Audit") or {}
        print("allow" + (f" (audit: {', '.join(rec['rule'])})" if rec.get("rule") else ""))
    else:
        print(f"deny: {decision.msg}")
    return 0 if decision.allow else 1


def summary(policy) -> dict:
    """What check-policy reports of a valid policy (doctor shows it too)."""
    levels = {}
    for lv in policy.levels.values():
        levels[lv] = levels.get(lv, 0) + 1
    return {"source": policy.source, "policy_hash": policy.policy_hash, "mode": policy.mode,
            "levels": levels, "exceptions": [e.describe() for e in policy.exceptions],
            "audit_allowed": policy.audit_allowed}


def cmd_check_policy(args) -> int:
    try:
        policy = _policy(args.policy)
    except _Bad as exc:
        if args.json:
            print_json({"valid": False, "error": str(exc)})
        return fail(str(exc))
    doc = {"valid": True, **summary(policy)}
    if args.json:
        print_json(doc)
        return 0
    lv = ", ".join(f"{n} {k}" for k, n in sorted(doc["levels"].items()))
    print(f"{doc['source']}: valid (hash {doc['policy_hash']}, mode {doc['mode']}; rules: {lv}; "
          f"allowed requests logged: {doc['audit_allowed']})")
    for e in doc["exceptions"]:
        print(f"  exception {e}")
    return 0


def cmd_rules(args) -> int:
    from .rules import all_checks
    try:
        policy = _policy(args.policy)
    except _Bad as exc:
        return fail(str(exc))
    rows = [{"rule": rid, "level": policy.level(rid), "actions": sorted(r.actions),
             "reason": r.reason} for rid, r in sorted(all_checks().items())]
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        print(f"{r['rule']:28} {r['level']:6} {', '.join(r['actions']) or '(engine)'}")
    return 0
