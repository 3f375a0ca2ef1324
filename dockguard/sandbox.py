"""`dockguard sandbox up|down|status`: the README's sandbox.

A private dockerd guarded by the dockguard authz plugin, with dockguard-runtime as its
default runtime and the health sidecar watching it, a `busybox` image imported from
busybox-static, and a walkthrough of what the guide allows and forbids. It stays up after
the command returns; `down` stops everything it started and removes its directory.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from dockguard import util

DEFAULT_DIR = "/var/lib/dockguard-sandbox"
PLUGIN_NAME = "dockguard-sandbox"


def register(sub, name):
    p = sub.add_parser(name, help="a private dockerd guarded by dockguard, with a walkthrough")
    s = p.add_subparsers(dest="sandbox_cmd", required=True, metavar="COMMAND")
    for cmd, fn, help_ in (("up", cmd_up, "start the sandbox and walk through the guide's rules"),
                           ("down", cmd_down, "stop the sandbox and remove its directory"),
                           ("status", cmd_status, "is it running, and how to use it")):
        c = s.add_parser(cmd, help=help_)
        c.add_argument("--dir", default=DEFAULT_DIR, help=f"sandbox directory (default {DEFAULT_DIR})")
        if cmd == "up":
            c.add_argument("--no-walkthrough", action="store_true",
                           help="bring the sandbox up without running the demonstration")
            c.add_argument("--profile", choices=("guide", "cis"), default="guide",
                           help="the policy's profile: the guide's rules, or cis (docs/cis.md)")
        c.set_defaults(func=fn)


def _state_path(base: Path) -> Path:
    return base / "sandbox.json"


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _started(proc) -> dict:
    """How the state file names a process we started: its pid and start time (a pid alone
    may have been reused by the time `down` runs)."""
    import psutil
    try:
        return {"pid": proc.pid, "start": psutil.Process(proc.pid).create_time()}
    except psutil.Error:
        return {"pid": proc.pid, "start": None}


def _ours(entry) -> int | None:
    """The pid of a recorded process if that very process still runs (same start time)."""
    import psutil
    if isinstance(entry, int) and not isinstance(entry, bool):   # state of an older version
        return entry if _alive(entry) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("pid"), int):
        return None
    try:
        if psutil.Process(entry["pid"]).create_time() == entry.get("start"):
            return entry["pid"]
    except psutil.Error:
        pass
    return None


def _dockguard_cmd() -> str:
    exe = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0].endswith("dockguard") else None
    return f"{exe} sandbox down" if exe else f"{sys.executable} -m dockguard.cli sandbox down"


class Walk:
    """Runs walkthrough steps against the sandbox and says what happened."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.failures = 0
        self.n = 0

    def __call__(self, title: str, argv: list[str], expect_ok: bool, env: dict | None = None) -> bool:
        self.n += 1
        prefix = "".join(f"{k}={v} " for k, v in (env or {}).items())
        print(f"\n[{self.n}] {title}\n    $ {prefix}docker {' '.join(argv)}")
        r = self.daemon.docker(*argv, timeout=120, env=env)
        ok = r.returncode == 0
        out = (r.stdout if ok else r.stderr).strip()
        for line in out.splitlines()[:8]:
            print(f"      {line[:400]}")
        verdict = "allowed" if ok else "refused"
        if ok == expect_ok:
            print(f"    -> {verdict}, as expected")
        else:
            self.failures += 1
            print(f"    -> {verdict}: NOT what was expected")
        return ok


def authz_walkthrough(step) -> None:
    step("a plain container runs", ["run", "--rm", "busybox", "echo", "hello from the sandbox"], True)
    step("--privileged is refused (避免使用可能会对host造成影响的选项)",
         ["run", "--rm", "--privileged", "busybox", "true"], False)
    step("sharing the host's PID namespace is refused", ["run", "--rm", "--pid", "host", "busybox", "true"], False)
    step("a dangerous capability, in any spelling, is refused",
         ["run", "--rm", "--cap-add", "cap_sys_admin", "busybox", "true"], False)
    step("a harmless capability is fine", ["run", "--rm", "--cap-add", "NET_BIND_SERVICE", "busybox", "true"], True)
    step("disabling seccomp is refused", ["run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "true"], False)
    step("binding /etc from the host is refused, in any spelling",
         ["run", "--rm", "-v", "//etc/../etc/:/host-etc", "busybox", "true"], False)
    # API >= 1.42 has no KernelMemory (CLIs >= 23 drop the flag's value, dockerd >= 23 ignores
    # it); a client asking for API 1.41 still sends it, and the plugin refuses it there
    step("kernel memory limits are refused (kernel memory cgroup不稳定，禁止使用), on the API that has them",
         ["run", "--rm", "--kernel-memory", "64m", "busybox", "true"], False, env={"DOCKER_API_VERSION": "1.41"})
    step("a shell without -ti is refused", ["run", "--rm", "busybox", "sh"], False)
    step("... and fine with a command", ["run", "--rm", "busybox", "sh", "-c", "echo ok"], True)
    step("create a container to remove", ["create", "--name", "demo-rm", "busybox", "true"], True)
    step("docker rm -f is refused (it can leave metadata behind)", ["rm", "-f", "demo-rm"], False)
    step("docker rm after stop is the way", ["rm", "demo-rm"], True)


def cmd_up(args) -> int:
    from dockguard.harness.plugin import PluginProcess
    from dockguard.harness.daemon import PrivateDaemon

    base = Path(args.dir)
    state = _read_state(base)
    if state and _ours(state.get("dockerd")):
        print(f"sandbox already running in {base}")
        _print_usage(base, state["host"])
        return 0
    if base.exists():
        _teardown(base, state or {})
    base.mkdir(parents=True)
    daemon = PrivateDaemon(base)
    kw: dict = {}
    try:
        from hookbin import sandbox as hook_sandbox
        kw = hook_sandbox.configure(base, daemon.data_root)
    except ImportError:
        hook_sandbox = None
    daemon = PrivateDaemon(base, authz_plugins=[PLUGIN_NAME], **kw)
    policy = hook_sandbox.policy_path(base) if hook_sandbox else None  # [hookspec] shared with the runtime
    if getattr(args, "profile", "guide") == "cis":
        from dockguard import sandbox_cis
        policy = policy or base / "policy.toml"
        sandbox_cis.select(policy)
    plugin = PluginProcess(PLUGIN_NAME, docker_host=daemon.host, log_path=base / "authz-audit.log",
                           policy=str(policy) if policy else None, plugin_dir=daemon.plugin_dir)
    print(f"starting the dockguard authz plugin ({plugin.socket}) ...")
    plugin.start()
    print(f"starting a private dockerd ({daemon.host}) ...")
    daemon.start()
    daemon.import_busybox()
    health_proc = None
    try:
        from healthd import sandbox as health_sandbox
        health_proc = health_sandbox.start(daemon, base / "health")
    except ImportError:
        health_sandbox = None
    _write_state(base, {"host": daemon.host, "dockerd": _started(daemon.proc), "plugin": _started(plugin.proc),
                        "healthd": _started(health_proc) if health_proc else None})
    rc = 0
    if not args.no_walkthrough:
        step = Walk(daemon)
        if getattr(args, "profile", "guide") == "cis":
            print("\n== the cis profile (CIS Docker Benchmark, section 5) ==")
            sandbox_cis.walkthrough(step)
            hook_sandbox = health_sandbox = None  # their demo containers have no limits
        else:
            print("\n== the guide's rules, enforced by the authz plugin ==")
            authz_walkthrough(step)
        if hook_sandbox:
            print("\n== hook-spec through dockguard-runtime ==")
            hook_sandbox.walkthrough(daemon, step)
        if health_sandbox:
            print("\n== health checks with exit-on-unhealthy ==")
            health_sandbox.walkthrough(daemon, step)
        print(f"\nwalkthrough: {step.n} steps, {step.failures} not as expected")
        rc = 1 if step.failures else 0
        print(f"audit log of every decision: {base / 'authz-audit.log'}")
    _print_usage(base, daemon.host)
    return rc


def _print_usage(base: Path, host: str) -> None:
    print("\nThe sandbox keeps running. To use it:")
    print(f"  export DOCKER_HOST={host}")
    print(f"To stop it and remove {base}:")
    print(f"  {_dockguard_cmd()}" + ("" if str(base) == DEFAULT_DIR else f" --dir {base}"))


def _read_state(base: Path) -> dict | None:
    try:
        return json.loads(_state_path(base).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        print(f"warning: {_state_path(base)} is corrupt; stopping what can be found", file=sys.stderr)
        return {}


def _write_state(base: Path, state: dict) -> None:
    util.atomic_write(_state_path(base), json.dumps(state), durable=False)


def _stop_pid(pid: int | None, group: bool, timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL, one process we started (its group if it leads one of its own)."""
    if not _alive(pid):
        return
    try:
        (os.killpg if group else os.kill)(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    if _alive(pid):
        try:
            (os.killpg if group else os.kill)(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _teardown(base: Path, state: dict) -> None:
    """Stop what `up` started, by recorded pid and start time, and the daemon's namespaces
    with what runs in them (PrivateDaemon.stop: found by namespace, never by command line)."""
    from dockguard.harness.daemon import PrivateDaemon
    _stop_pid(_ours(state.get("healthd")), group=True)
    if isinstance(state.get("dockerd"), int):        # started by an older version, outside namespaces
        _stop_pid(_ours(state["dockerd"]), group=False)
    PrivateDaemon(base).stop()
    _stop_pid(_ours(state.get("plugin")), group=True)
    shutil.rmtree(base, ignore_errors=True)


def cmd_down(args) -> int:
    base = Path(args.dir)
    state = _read_state(base)
    if state is None and not base.exists():
        print(f"no sandbox in {base}")
        return 0
    _teardown(base, state or {})
    print(f"sandbox stopped; {base} removed")
    return 0


def cmd_status(args) -> int:
    base = Path(args.dir)
    state = _read_state(base)
    if not state or not _ours(state.get("dockerd")):
        print(f"no sandbox running in {base}")
        return 1
    for k in ("dockerd", "plugin", "healthd"):
        entry = state.get(k) or {}
        print(f"{k:8} pid {entry.get('pid')} {'running' if _ours(entry) else 'NOT running'}")
    _print_usage(base, state["host"])
    return 0
