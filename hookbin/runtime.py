"""`dockguard-runtime`: an OCI runtime wrapper that adds hook-spec hooks, then execs runc.

dockerd runs it (through the shim) as
    dockguard-runtime [--hook-spec FILE] [--policy FILE] [--docker-root DIR] <runc global options> CMD ...
On `create` it first judges the bundle's OCI config with the plugin's rules and policy
(hookbin/judge.py: refuse, or pin the bind sources; docs/runtime.md), then merges the
daemon-wide spec (--hook-spec) and the container's own spec (label or annotation
`dockguard.hook-spec`) into the bundle's config.json hooks; every other command goes to
runc untouched. The installed front script (see install.py) sends every command but
`create` straight to runc without starting Python; this module is the full path and the
reference behaviour.

Errors go to runc's `--log` file in runc's own format, so dockerd shows them to the user,
and the wrapper exits non-zero before runc runs: nothing is created. A container with bind
sources is created by runc as the wrapper's child, so that a source removed after it was
judged (runc's mount then fails) is still refused in the runtime's words.
"""
from __future__ import annotations

import os
import sys

from dockguard import util
from hookbin import judge, oci, spec as hookspec
from hookbin import policy as hookpolicy

# runc global options that take a value (urfave/cli accepts one or two dashes).
RUNC_GLOBAL_VALUE_OPTS = {"log", "log-format", "root", "criu", "rootless"}
# `runc create` options that take a value.
CREATE_VALUE_OPTS = {"bundle", "b", "console-socket", "pid-file", "preserve-fds"}
WRAPPER_OPTS = {"hook-spec", "docker-root", "runc", "policy"}
# Commands that make a container from a bundle: judged, and given the hook-specs' hooks.
# containerd uses `create`; `run` and `restore` (checkpoint) would make one just the same.
BUNDLE_COMMANDS = ("create", "run", "restore")
RUNC_CANDIDATES = util.RUNC_CANDIDATES


class UsageError(util.DockguardError):
    """The wrapper's own options are malformed."""


class Invocation:
    """One call of the wrapper, split into our options and runc's argv.

    A plain class, not a dataclass: `dataclasses` costs milliseconds of import on every create.
    """

    def __init__(self, runc_args: list[str] | None = None):
        self.runc_args: list[str] = runc_args if runc_args is not None else []
        self.hook_spec: str | None = None
        self.policy: str | None = None  # [hookspec] source; None: /etc/dockguard/policy.toml if present
        self.docker_root: str = hookspec.DEFAULT_DOCKER_ROOT
        self.runc: str | None = None
        self.command: str | None = None
        self.command_args: list[str] = []
        self.log: str | None = None
        self.log_format: str = "text"
        self.bundle: str | None = None
        self.container_id: str | None = None


def _split_opt(arg: str) -> tuple[str, str | None]:
    """`--name=value` -> (name, value); `--name`/`-name` -> (name, None)."""
    body = arg.lstrip("-")
    if "=" in body:
        name, value = body.split("=", 1)
        return name, value
    return body, None


def parse_argv(argv: list[str]) -> Invocation:
    """Separate the wrapper's options from runc's, find the command, bundle and id (pure)."""
    inv = Invocation(runc_args=[])
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            break
        name, value = _split_opt(arg)
        takes_value = name in WRAPPER_OPTS or name in RUNC_GLOBAL_VALUE_OPTS
        if takes_value and value is None:
            if i + 1 >= len(argv):
                raise UsageError(f"option {arg} needs a value")
            value = argv[i + 1]
            step = 2
        else:
            step = 1
        if name in WRAPPER_OPTS and arg.startswith("--"):
            if name == "hook-spec":
                inv.hook_spec = value or None
            elif name == "policy":
                if not value:
                    raise UsageError("--policy needs a non-empty value")
                inv.policy = value
            elif name == "docker-root":
                if not value:
                    raise UsageError("--docker-root needs a non-empty value")
                inv.docker_root = value
            else:
                inv.runc = value
        else:
            if name == "log":
                inv.log = value
            elif name == "log-format":
                inv.log_format = value or "text"
            inv.runc_args.extend(argv[i:i + step])
        i += step
    inv.runc_args.extend(argv[i:])
    if i < len(argv) and argv[i] != "--":
        inv.command = argv[i]
        inv.command_args = argv[i + 1:]
    if inv.command in BUNDLE_COMMANDS:
        inv.bundle, inv.container_id = parse_create_args(inv.command_args)
    return inv


def parse_create_args(args: list[str]) -> tuple[str, str | None]:
    """`runc create` arguments -> (bundle, container id); runc's default bundle is the cwd."""
    bundle, positional = ".", []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            positional.extend(args[i + 1:])
            break
        if arg.startswith("-") and arg != "-":
            name, value = _split_opt(arg)
            if name in CREATE_VALUE_OPTS and value is None:
                value = args[i + 1] if i + 1 < len(args) else None
                i += 1
            if name in ("bundle", "b") and value is not None:
                bundle = value
        else:
            positional.append(arg)
        i += 1
    return bundle, (positional[-1] if positional else None)


# --- where the container's own spec comes from --------------------------------------------

def container_labels(docker_root: str, container_id: str) -> dict:
    """Config.Labels from dockerd's config.v2.json (20.10 keeps labels out of config.json).

    No config.v2.json is normal for containers dockerd does not keep there (managed
    plugins); no containers/ directory at all means --docker-root is wrong, and ignoring
    that would silently drop every container's hooks.
    """
    if not os.path.isdir(os.path.join(docker_root, "containers")):
        raise hookspec.SpecError([f"docker root {docker_root!r} has no containers/ directory: "
                                  "is --docker-root right?"])
    path = os.path.join(docker_root, "containers", container_id, "config.v2.json")
    try:
        doc = oci.read_json(path)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise hookspec.SpecError([f"cannot read {path}: {exc}"]) from None
    labels = ((doc or {}).get("Config") or {}).get("Labels") or {}
    return labels if isinstance(labels, dict) else {}


def container_spec_value(labels: dict, annotations: dict) -> str | None:
    """The container's `dockguard.hook-spec`: label or annotation; both must agree if both set."""
    label = labels.get(hookspec.LABEL)
    note = annotations.get(hookspec.LABEL) if isinstance(annotations, dict) else None
    if label is not None and note is not None and label != note:
        raise hookspec.SpecError([f"label {hookspec.LABEL}={label!r} and annotation "
                                  f"{hookspec.LABEL}={note!r} disagree; set one of them"])
    return label if label is not None else note


def spec_paths(hook_spec: str | None, container_value: str | None) -> list[str]:
    """Daemon-wide spec first, then the container's (comma-separated, in order).

    A daemon-wide spec that does not exist (not even as a link) means no daemon-wide hooks:
    `dockguard install` names /etc/docker/hookspec.json before the operator writes one."""
    paths = [hook_spec] if hook_spec and os.path.lexists(hook_spec) else []
    if container_value is not None:
        paths += hookspec.split_label(container_value)
    return paths


def prepare_bundle(inv: Invocation) -> int:
    """Merge all hooks for this `create` into the bundle's config.json; return hooks added."""
    bundle = inv.bundle or "."
    config_path = os.path.join(bundle, "config.json")
    try:
        config = oci.read_json(config_path)
    except (OSError, ValueError) as exc:
        raise hookspec.SpecError([f"cannot read {config_path}: {exc}"]) from None
    if not isinstance(config, dict):
        raise hookspec.SpecError([f"{config_path} is not a JSON object"])
    labels = container_labels(inv.docker_root, inv.container_id) if inv.container_id else {}
    value = container_spec_value(labels, config.get("annotations") or {})
    paths = spec_paths(inv.hook_spec, value)
    if not paths:
        return 0
    policy = hookpolicy.load(inv.policy)
    merged = hookspec.load_specs(paths, inv.docker_root, policy, granted=inv.hook_spec)
    if hookspec.is_empty(merged):
        return 0
    # each hook behind hookbin/hookrun.py: a hung or noisy hook cannot hold the start up
    from hookbin import hookrun  # here, not at the top: its signal/select imports cost every create ms
    oci.write_json_atomic(config_path, oci.add_hooks(config, hookrun.wrap(merged)))
    return sum(len(merged[p]) for p in hookspec.PHASES)


# --- errors, the way runc reports them ----------------------------------------------------

def log_line(msg: str, log_format: str, now: float | None = None, level: str = "error") -> str:
    """One record as runc (logrus) writes it: JSON, or logfmt-style text."""
    import json  # only here: `json` (and its `re`) costs every create ~8 ms of CPU
    stamp = util.utc_stamp(now, 9, truncate=True)  # as runc (Go) writes it
    if log_format == "json":
        return json.dumps({"level": level, "msg": msg, "time": stamp}) + "\n"
    return f"time={json.dumps(stamp)} level={level} msg={json.dumps(msg)}\n"


def report(inv: Invocation | None, msg: str, level: str = "error") -> None:
    """To runc's --log file (dockerd reads the last error from it) and to stderr."""
    msg = f"dockguard-runtime: {msg}"
    if inv is not None and inv.log:
        try:
            fd = os.open(inv.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, log_line(msg, inv.log_format, level=level).encode())
            finally:
                os.close(fd)
        except OSError:
            pass
    try:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def find_runc(explicit: str | None) -> str:
    if explicit:
        return explicit
    found = util.find_executable("runc", RUNC_CANDIDATES)
    if found:
        return found
    raise UsageError("runc not found (pass --runc PATH)")


def runc_error(log: str | None, log_format: str) -> str | None:
    """The last error runc wrote to its --log file (what dockerd would show), or None."""
    if not log:
        return None
    try:
        with open(log, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 65536))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    import json
    for line in reversed(lines):
        if log_format == "json":
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("level") == "error":
                return str(rec.get("msg", ""))
        elif "level=error" in line:
            return line
    return None


# Signals the wrapper passes on to runc while it waits for it (`runc run` in a terminal).
FORWARDED = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
PR_SET_PDEATHSIG = 1


def run_watched(runc: str, inv: Invocation, staged: list) -> int:
    """Run runc as a child and, if it fails, say why in the runtime's words when a staged
    bind source is the cause (hookbin/judge.explain_failure): a source removed after it was
    judged makes the kernel refuse runc's mount, whose raw error names only the staging path.
    The child dies with the wrapper (as runc would with the shim); runc's status is ours,
    and like execv this does not return."""
    import _signal as signal  # `signal` itself imports enum: ~5 ms per create
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: becomes runc
        try:
            util.libc().prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)
            os.execv(runc, [runc, *inv.runc_args])
        except BaseException as exc:  # noqa: BLE001 - never return into the parent's code
            try:
                report(inv, f"cannot exec {runc}: {getattr(exc, 'strerror', None) or exc}")
            finally:
                os._exit(1)
    for name in FORWARDED:
        signal.signal(getattr(signal, name), lambda sig, _frame: os.kill(pid, sig))
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        msg = judge.explain_failure(staged, runc_error(inv.log, inv.log_format))
        if msg:
            report(inv, msg)  # the last error in the log: the one dockerd shows
    # as execv would, never return: the interpreter's clean-up costs a create ~5 ms of CPU
    os._exit(code if code >= 0 else 128 - code)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    inv = None
    staged: list = []
    try:
        inv = parse_argv(argv)
        runc = find_runc(inv.runc)
        if inv.command in BUNDLE_COMMANDS:
            # the runtime's line of defence (hookbin/judge.py): refuse, or pin bind sources
            judge.check_bundle(inv.bundle or ".", inv.docker_root, inv.container_id, inv.policy,
                               audit=lambda msg: report(inv, msg, level="warning"), staged=staged)
            prepare_bundle(inv)
    except judge.Refused as exc:
        report(inv, str(exc))
        return 1
    except hookspec.SpecError as exc:
        report(inv, "hook-spec refused: " + "; ".join(exc.problems))
        return 1
    except hookpolicy.PolicyError as exc:
        report(inv, f"hook-spec refused: {exc}")
        return 1
    except (UsageError, OSError) as exc:
        report(inv, str(exc))
        return 1
    if staged:
        try:
            return run_watched(runc, inv, staged)
        except OSError as exc:
            report(inv, f"cannot run {runc}: {exc.strerror or exc}")
            return 1
    try:
        os.execv(runc, [runc, *inv.runc_args])
    except OSError as exc:
        report(inv, f"cannot exec {runc}: {exc.strerror}")
        return 1
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
