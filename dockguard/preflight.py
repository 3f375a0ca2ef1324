"""`dockguard preflight`: the containers neither line of dockguard will judge.

The plugin judges API calls, and an existing container's own configuration whenever it is
started, exec'd or attached through the API (authz/existing.py); dockguard-runtime judges
every start of a container recorded with it. A container recorded with another runtime
(plain `runc`: made before dockguard was installed, or with `--runtime runc`) and a restart
policy is started by dockerd at boot, and again whenever it exits, with no API call and
without the runtime: nothing of dockguard sees those starts. This lists each such container
that violates the policy, with the rule and the fix. `dockguard install` runs it and does
not finish while one is left, unless told to turn their restart policies off
(--disarm-restart, i.e. `docker update --restart=no`) or to accept them by name.

`scan()` is the function (for `dockguard doctor` too); the CLI prints it and exits 0 (none
left), 1 (violating containers would start unjudged) or 2 (could not check).

When the daemon does not answer (docker stopped during an install), dockerd's own records
under its root are read instead (config.v2.json, hostconfig.json, local volumes' opts.json).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from authz import existing
from authz.context import DEFAULT_SOCKETS, DaemonClient, HostFacts, LookupFailed, RequestContext

GUARD_RUNTIME = "dockguard"


@dataclass
class Entry:
    """One container that violates the policy (a deny-level finding) or is only audited."""

    id: str
    name: str
    runtime: str
    restart: str
    running: bool
    guarded: bool  # recorded with the guard runtime: judged by it at every start
    findings: list[existing.Finding] = field(default_factory=list)
    accepted: bool = False
    disarmed: bool = False

    @property
    def violates(self) -> bool:
        return any(f.level == "deny" for f in self.findings)

    @property
    def starts_at_boot(self) -> bool:
        return self.restart in existing.RESTART_AT_BOOT and not self.disarmed

    @property
    def blocking(self) -> bool:
        """Would be started by dockerd, unjudged, and nobody said it may."""
        return self.violates and self.starts_at_boot and not self.guarded and not self.accepted

    def fix(self) -> str:
        if self.disarmed:
            return "restart policy turned off (docker update --restart=no): it stays stopped at boot"
        if self.accepted:
            return "accepted by name: it keeps starting at boot, unjudged"
        if self.blocking:
            return (f"docker update --restart=no {self.name} (the plugin then refuses to start it), "
                    f"or docker rm {self.name} and create it again within the policy; "
                    f"or accept it: --accept {self.name}")
        if self.violates and self.running:
            return (f"it runs now, unjudged: docker stop {self.name}, then docker rm {self.name} and "
                    "create it again within the policy (the plugin refuses to start it as it is)")
        if self.violates:
            return f"the plugin refuses to start it as it is: docker rm {self.name}, and create it again"
        return "audited only"

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "runtime": self.runtime, "restart": self.restart,
                "running": self.running, "guarded": self.guarded, "violates": self.violates,
                "blocking": self.blocking, "accepted": self.accepted, "disarmed": self.disarmed,
                "fix": self.fix(),
                "findings": [{"rule": f.rule, "level": f.level, "problems": list(f.problems)}
                             for f in self.findings]}


def _accepted(entry: Entry, accept) -> bool:
    for a in accept:
        a = a.strip().lstrip("/")
        if a and (a == entry.name or (len(a) >= 12 and entry.id.startswith(a))):
            return True
    return False


def scan(daemon, policy, *, host: HostFacts | None = None, guard_runtime: str = GUARD_RUNTIME,
         accept=()) -> list[Entry]:
    """Every container with a finding under `policy`. Raises LookupFailed if the daemon (or
    its records) cannot be read."""
    host = host or HostFacts()
    rules = existing.rules_for_existing(policy)
    out = []
    for cid in daemon.container_ids():
        ctx = RequestContext(policy.lists, daemon, host)
        info = ctx.container(cid)
        if not isinstance(info, dict):
            continue  # removed meanwhile
        findings = existing.judge(None, info, ctx, rules)
        if not findings:
            continue
        hc = info.get("HostConfig") or {}
        state = info.get("State") or {}
        e = Entry(id=str(info.get("Id") or cid), name=str(info.get("Name") or "").lstrip("/"),
                  runtime=str(hc.get("Runtime") or ""),
                  restart=str((hc.get("RestartPolicy") or {}).get("Name") or "no"),
                  running=bool(state.get("Running") or state.get("Restarting")),
                  guarded=str(hc.get("Runtime") or "") == guard_runtime, findings=findings)
        e.accepted = _accepted(e, accept)
        out.append(e)
    return out


def disarm(daemon, entries: list[Entry]) -> list[str]:
    """`docker update --restart=no` every blocking entry; the errors, if any."""
    errors = []
    for e in entries:
        if not e.blocking:
            continue
        try:
            daemon.update_restart_no(e.id)
            e.disarmed = True
        except Exception as exc:  # noqa: BLE001 - reported per container
            errors.append(f"{e.name}: {exc}")
    return errors


def render(entries: list[Entry]) -> str:
    if not entries:
        return "dockguard preflight: no container violates the policy\n"
    lines = []
    for e in entries:
        how = [f"runtime {e.runtime or '?'}", f"restart {e.restart}", "running" if e.running else "stopped"]
        tag = ("WOULD START AT BOOT UNJUDGED" if e.blocking else
               "starts at boot under the dockguard runtime (judged there)" if e.violates and e.guarded
               and e.starts_at_boot else "")
        lines.append(f"{e.name} ({e.id[:12]}): {', '.join(how)}" + (f": {tag}" if tag else ""))
        for f in e.findings:
            lines.append(f"    [{f.rule}]{' (audit)' if f.level != 'deny' else ''} {'; '.join(f.problems)}")
        lines.append(f"    fix: {e.fix()}")
    n = sum(e.blocking for e in entries)
    lines.append(f"{n} container(s) would start at boot with nothing of dockguard judging them"
                 if n else "no violating container would start at boot unjudged")
    return "\n".join(lines) + "\n"


# ---- dockerd's records, when the daemon does not answer --------------------------------

class RecordsDaemon:
    """The DaemonClient lookups preflight needs, answered from dockerd's files under its root
    (as docker inspect would: Config, HostConfig, Mounts from MountPoints, State)."""

    def __init__(self, docker_root: str, fs_root: str = "/"):
        self.root = docker_root
        self.base = Path(fs_root) / docker_root.lstrip("/")

    def _read(self, path: Path):
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LookupFailed(f"could not read {path}: {exc}") from None

    def container_ids(self) -> list[str]:
        try:
            return sorted(os.listdir(self.base / "containers"))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise LookupFailed(f"could not list {self.base / 'containers'}: {exc}") from None

    def container(self, ref: str) -> dict | None:
        ids = self.container_ids()
        cid = ref if ref in ids else next((i for i in ids if self._name(i) == ref.lstrip("/")), None)
        if cid is None:
            cid = next((i for i in ids if i.startswith(ref)), None) if ref else None
        if cid is None:
            return None
        cfg = self._read(self.base / "containers" / cid / "config.v2.json")
        hc = self._read(self.base / "containers" / cid / "hostconfig.json")
        if not isinstance(cfg, dict):
            return None
        mounts = []
        for mp in (cfg.get("MountPoints") or {}).values():
            if isinstance(mp, dict):
                mounts.append({"Type": mp.get("Type") or ("volume" if mp.get("Name") else "bind"),
                               "Name": mp.get("Name") or "", "Source": mp.get("Source") or "",
                               "Destination": mp.get("Destination") or "", "Driver": mp.get("Driver") or "",
                               "RW": bool(mp.get("RW", True))})
        state = cfg.get("State") or {}
        return {"Id": cfg.get("ID") or cid, "Name": cfg.get("Name") or "", "Config": cfg.get("Config") or {},
                "HostConfig": hc if isinstance(hc, dict) else {}, "Mounts": mounts,
                "State": {"Running": bool(state.get("Running")), "Restarting": bool(state.get("Restarting"))}}

    def _name(self, cid: str) -> str:
        cfg = self._read(self.base / "containers" / cid / "config.v2.json") or {}
        return str(cfg.get("Name") or "").lstrip("/")

    def volume(self, name: str) -> dict | None:
        d = self.base / "volumes" / name
        if not d.is_dir():
            return None
        opts = self._read(d / "opts.json") or {}
        o = {"type": opts.get("MountType", ""), "o": opts.get("MountOpts", ""),
             "device": opts.get("MountDevice", "")}
        return {"Name": name, "Driver": "local", "Options": {k: v for k, v in o.items() if v}}

    def image_config(self, ref: str) -> dict:
        return {}

    def plugin(self, name: str):
        return None

    def docker_root(self) -> str:
        return self.root

    def root_paths(self) -> frozenset[str]:
        return frozenset({self.root, os.path.realpath(self.root)})

    def socket_paths(self) -> frozenset[str]:
        return frozenset(DEFAULT_SOCKETS) | {os.path.realpath(x) for x in DEFAULT_SOCKETS}

    def daemon_dirs(self) -> frozenset[str]:
        """A stopped daemon's exec-root cannot be asked: its root and the default places."""
        dirs = {self.root, "/var/run/docker", "/run/docker", "/run/containerd", "/var/lib/containerd"}
        return frozenset(dirs | {os.path.realpath(d) for d in dirs})

    def update_restart_no(self, cid: str) -> None:
        raise LookupFailed("the daemon does not answer: start it, then docker update --restart=no")


class ApiDaemon(DaemonClient):
    """The plugin's DaemonClient, plus the one write preflight makes."""

    def update_restart_no(self, cid: str) -> None:
        self.api.update_container(cid, restart_policy={"Name": "no"})

    def reachable(self) -> bool:
        try:
            self.api.ping()
            return True
        except Exception:  # noqa: BLE001 - any failure: not reachable
            return False


def connect(docker_host: str | None, docker_root: str | None, fs_root: str = "/"):
    """The daemon if it answers, else its records under docker_root (None if not given)."""
    d = ApiDaemon(docker_host, timeout=30)
    if d.reachable():
        return d, f"the daemon at {docker_host or os.environ.get('DOCKER_HOST') or 'the standard socket'}"
    if docker_root:
        return RecordsDaemon(docker_root, fs_root), f"dockerd's records under {docker_root} (daemon not answering)"
    raise LookupFailed(f"the daemon at {docker_host or 'the standard socket'} does not answer")


def _policy(path: str | None):
    from authz import policy as policies
    return policies.load(path)


def run(*, docker_host=None, docker_root=None, fs_root="/", policy_path=None, accept=(),
        do_disarm=False, guard_runtime=GUARD_RUNTIME, as_json=False, out=sys.stdout) -> int:
    """The CLI's body (and install's): 0 none left, 1 some left, 2 could not check."""
    try:
        pol = _policy(policy_path)
        daemon, source = connect(docker_host, docker_root, fs_root)
        entries = scan(daemon, pol, guard_runtime=guard_runtime, accept=accept)
    except Exception as exc:  # noqa: BLE001 - PolicyError, LookupFailed, ...: a message, exit 2
        if as_json:
            print(json.dumps({"error": str(exc)}), file=out)
        print(f"dockguard: error: preflight: cannot check: {exc}", file=sys.stderr)
        return 2
    errors = disarm(daemon, entries) if do_disarm else []
    blocking = sum(e.blocking for e in entries)
    if as_json:
        print(json.dumps({"source": source, "blocking": blocking, "errors": errors,
                          "containers": [e.as_json() for e in entries]}, indent=2), file=out)
    else:
        print(f"dockguard preflight: checked {source}", file=out)
        print(render(entries), end="", file=out)
        for err in errors:
            print(f"could not turn off the restart policy of {err}", file=out)
    return 1 if blocking else 0


def register(sub, name):
    p = sub.add_parser(name, help="list containers that violate the policy and would start at boot "
                                  "with nothing of dockguard judging them")
    p.add_argument("--docker-host", default=None, help="the daemon (default: DOCKER_HOST, else the standard socket)")
    p.add_argument("--docker-root", default=None,
                   help="read dockerd's records under this Docker Root Dir if the daemon does not answer")
    p.add_argument("--policy", default=None, help="policy file (default: the built-in policy)")
    p.add_argument("--guard-runtime", default=GUARD_RUNTIME,
                   help="the runtime that judges every start itself (default dockguard)")
    p.add_argument("--accept", action="append", default=[], metavar="NAME",
                   help="accept this container (name or ID) as it is; repeatable")
    p.add_argument("--disarm", action="store_true",
                   help="turn off the restart policy (docker update --restart=no) of each listed "
                        "container that would start at boot unjudged")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=lambda a: run(docker_host=a.docker_host, docker_root=a.docker_root,
                                      policy_path=a.policy, accept=a.accept, do_disarm=a.disarm,
                                      guard_runtime=a.guard_runtime, as_json=a.json))


# ---- `dockguard install` ---------------------------------------------------------------

def add_install_options(p) -> None:
    g = p.add_argument_group("containers nothing of dockguard would judge (see dockguard preflight)")
    g.add_argument("--disarm-restart", action="store_true",
                   help="turn off the restart policy of each violating container recorded with "
                        "another runtime (docker update --restart=no)")
    g.add_argument("--accept-container", action="append", default=[], metavar="NAME",
                   help="accept this violating container as it is; repeatable")
    g.add_argument("--docker-host", default=None,
                   help="the daemon whose containers are checked (default: DOCKER_HOST, else the "
                        "standard socket; not checked for a staged --root unless given)")


def install_gate(args) -> int:
    """Run by `dockguard install` before it changes anything: 0 to go on, else its exit code."""
    root = getattr(args, "root", "/") or "/"
    if root != "/" and not args.docker_host:
        print(f"note: staged under {root}: no daemon's containers checked; run `dockguard preflight` "
              "on the host before restarting docker", file=sys.stderr)
        return 0
    policy = Path(root) / "etc/dockguard/policy.toml"
    dry = getattr(args, "dry_run", False)
    rc = run(docker_host=args.docker_host, docker_root=getattr(args, "docker_root", None), fs_root=root,
             policy_path=str(policy) if policy.is_file() else None, accept=args.accept_container,
             do_disarm=args.disarm_restart and not dry, out=sys.stderr)
    if rc == 2:
        print("dockguard install: the containers of this host could not be checked (see above); "
              "nothing was installed", file=sys.stderr)
        return 2
    if rc == 1 and not dry:
        print("dockguard install: containers above violate the policy and would start at boot with "
              "nothing of dockguard judging them; nothing was installed. Fix them, or rerun with "
              "--disarm-restart (turns their restart policy off) or --accept-container NAME",
              file=sys.stderr)
        return 1
    return 0
