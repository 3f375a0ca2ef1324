"""`dockguard doctor [--json]`: is the suite in place and working on this host? One check per
line with the fix for each; exit 1 when any check fails (a warning does not).

Facts are gathered at the edge (`gather`: the daemon's API, files under --root), the checks are
plain functions over them, so a test runs them against a private daemon and a staged root.
What is checked, and why (the guide's operations notes among them):
- dockerd answers; the authz plugin is enabled in it and answers Activate on its socket;
- dockguard-runtime is registered (and the default runtime, else only --runtime dockguard is judged);
- the hooks dir and its programs are root's alone; the daemon-wide --hook-spec is valid;
- the policy file is valid (what `dockguard authz check-policy` says); healthd runs;
- BuildKit entitlements refuse --network host and security.insecure;
- no stale plugin entry in the discovery dirs (a dead one makes dockerd's lookup of an unknown
  volume driver take 15 s);
- containers in Dead state (the guide: remove them by hand once their filesystem is free) and
  ones that keep restarting;
- kernel features the rules depend on (kernel memory accounting, blkio weight and the disk
  schedulers that honour it), lxcfs for lxcfs-hook;
- the preflight scan (containers that would start unjudged) and plain-text registry logins.
"""
from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

from dockguard.clitools import add_json, print_json

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
RUNTIME = "dockguard"
HEALTHD_STALE = 30.0  # seconds: healthd rewrites .metrics.json every second


class Check:
    __slots__ = ("id", "status", "detail", "fix")

    def __init__(self, id: str, status: str, detail: str, fix: str = ""):
        self.id, self.status, self.detail, self.fix = id, status, detail, fix

    def as_json(self) -> dict:
        return {"check": self.id, "status": self.status, "detail": self.detail, "fix": self.fix}


# --- the edge: facts ------------------------------------------------------------------------

def _under(root: str, path: str) -> Path:
    return Path(root) / path.lstrip("/")


def _api(docker_host: str | None):
    import docker
    url = docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    return docker.APIClient(base_url=url, version="auto", timeout=15), url


def _answers(sock: Path) -> bool | None:
    """True: a plugin answers Activate; False: nothing listens; None: not a socket."""
    from dockguard.util import plugin_implements
    try:
        if not stat.S_ISSOCK(sock.lstat().st_mode):
            return None
    except OSError:
        return None
    return "authz" in (plugin_implements(sock, timeout=3.0) or [])


def _spec_address(path: Path) -> str | None:
    """The unix address a .spec (plain text) or .json (Addr) plugin entry names."""
    try:
        text = path.read_text(errors="replace").strip()
        if path.suffix == ".json":
            text = str(json.loads(text).get("Addr") or "")
    except (OSError, ValueError, AttributeError):
        return None
    return text[len("unix://"):] if text.startswith("unix://") else None


def gather(*, docker_host=None, root="/", plugin_dirs=None, policy=None, healthd_state=None,
           docker_config=None) -> dict:
    """Everything the checks read, as plain data (errors as strings)."""
    f: dict = {"root": root}
    try:
        api, url = _api(docker_host)
        f["url"] = url
        f["info"] = api.info()
        f["containers"] = api.containers(all=True)
    except Exception as exc:  # noqa: BLE001 - the check says what failed
        f["info_error"] = f"{type(exc).__name__}: {exc}"
        api = None
    f["api"] = api
    f["docker_host"] = docker_host
    dirs = plugin_dirs or [str(_under(root, "/run/docker/plugins")), str(_under(root, "/etc/docker/plugins"))]
    f["plugin_dirs"] = dirs
    entries = []
    for d in dirs:
        p = Path(d)
        if not p.is_dir():
            continue
        for e in sorted(p.iterdir()):
            if e.name.endswith(".sock"):
                entries.append({"path": str(e), "name": e.name[:-5], "answers": _answers(e)})
            elif e.suffix in (".spec", ".json"):
                addr = _spec_address(e)
                entries.append({"path": str(e), "name": e.stem, "addr": addr,
                                "answers": _answers(_under(root, addr)) if addr else None})
    f["plugin_entries"] = entries
    daemon_json = _under(root, "/etc/docker/daemon.json")
    try:
        f["daemon_json"] = json.loads(daemon_json.read_text())
    except FileNotFoundError:
        f["daemon_json"] = {}
    except (OSError, ValueError) as exc:
        f["daemon_json_error"] = f"{daemon_json}: {exc}"
        f["daemon_json"] = {}
    if policy is None and _under(root, "/etc/dockguard/policy.toml").exists():
        policy = str(_under(root, "/etc/dockguard/policy.toml"))
    f["policy_path"] = policy
    f["healthd_state"] = healthd_state or str(_under(root, "/var/lib/dockguard/health"))
    f["docker_config"] = docker_config or str(_under(root, "/root/.docker/config.json"))
    f["cgroup2"] = _under(root, "/sys/fs/cgroup/cgroup.controllers").exists()
    f["kmem"] = _under(root, "/sys/fs/cgroup/memory/memory.kmem.limit_in_bytes").exists()
    f["blkio_weight"] = (_under(root, "/sys/fs/cgroup/blkio/blkio.weight").exists()
                         or _under(root, "/sys/fs/cgroup/blkio/blkio.bfq.weight").exists()
                         or (f["cgroup2"] and "io" in _read(_under(root, "/sys/fs/cgroup/cgroup.controllers")).split()))
    scheds = {}
    block = _under(root, "/sys/block")
    if block.is_dir():
        for dev in sorted(block.iterdir()):
            s = _read(dev / "queue" / "scheduler").strip()
            if s and not dev.name.startswith(("loop", "ram", "zram", "dm-", "sr")):
                scheds[dev.name] = s
    f["schedulers"] = scheds
    f["lxcfs"] = any(" fuse.lxcfs " in line or line.startswith("lxcfs ")
                     for line in _read(_under(root, "/proc/mounts")).splitlines())
    return f


def _read(p: Path) -> str:
    try:
        return p.read_text(errors="replace")
    except OSError:
        return ""


# --- the checks (plain functions over the facts) -------------------------------------------

def check_daemon(f) -> Check:
    if "info" in f:
        i = f["info"]
        return Check("docker", OK, f"dockerd {i.get('ServerVersion')} at {f['url']}")
    return Check("docker", FAIL, f"dockerd does not answer ({f.get('info_error')})",
                 "start docker (systemctl start docker), or name it with --docker-host")


def check_plugin(f) -> Check:
    if "info" not in f:
        return Check("authz-plugin", SKIP, "dockerd not reachable")
    names = [n for n in ((f["info"].get("Plugins") or {}).get("Authorization") or [])]
    if not names:
        return Check("authz-plugin", FAIL, "dockerd runs without an authorization plugin: nothing is judged",
                     "dockguard install (adds authorization-plugins to daemon.json), then restart docker")
    sockets = {e["name"]: e for e in f["plugin_entries"]}
    bad = [n for n in names if not (sockets.get(n) or {}).get("answers")]
    if bad:
        return Check("authz-plugin", FAIL, f"enabled plugin(s) {', '.join(bad)} do not answer in "
                     f"{', '.join(f['plugin_dirs'])}: every API call fails",
                     "systemctl restart dockguard-authz.socket dockguard-authz.service "
                     "(journalctl -u dockguard-authz says why it stopped)")
    return Check("authz-plugin", OK, f"enabled and answering: {', '.join(names)}")


def check_runtime(f) -> Check:
    if "info" not in f:
        return Check("runtime", SKIP, "dockerd not reachable")
    runtimes = f["info"].get("Runtimes") or {}
    default = f["info"].get("DefaultRuntime")
    if RUNTIME not in runtimes:
        return Check("runtime", FAIL, "dockguard-runtime is not registered: nothing judges what runs",
                     "dockguard install (adds runtimes.dockguard), then restart docker")
    if default != RUNTIME:
        return Check("runtime", WARN, f"registered, but the default runtime is {default}: only "
                     "--runtime dockguard containers are judged and get hooks",
                     'set "default-runtime": "dockguard" in daemon.json and restart docker')
    return Check("runtime", OK, "registered and the default runtime")


def _runtime_args(f) -> list[str]:
    rt = ((f.get("info") or {}).get("Runtimes") or {}).get(RUNTIME) or {}
    return [str(a) for a in rt.get("runtimeArgs") or rt.get("args") or []]


def _opt(args: list[str], name: str) -> str | None:
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def check_hooks_dir(f) -> Check:
    if "info" not in f:
        return Check("hooks-dir", SKIP, "dockerd not reachable")
    droot = _opt(_runtime_args(f), "--docker-root") or f["info"].get("DockerRootDir") or "/var/lib/docker"
    hooks = _under(f["root"], droot) / "hooks"
    if not hooks.exists():
        return Check("hooks-dir", WARN, f"{hooks} does not exist: hook-specs cannot name hook programs",
                     "dockguard install (puts the hook programs there)")
    bad = []
    for p in [hooks] + sorted(hooks.iterdir()):
        st = p.lstat()
        if st.st_uid != 0 or st.st_mode & 0o022:
            bad.append(f"{p} (uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o})")
    if bad:
        return Check("hooks-dir", FAIL, "not root's alone: " + ", ".join(bad),
                     f"chown root:root and chmod go-w each (hook programs run as root): "
                     f"chown -R root:root {hooks} && chmod -R go-w {hooks}")
    return Check("hooks-dir", OK, f"{hooks}: root's alone")


def check_hook_spec(f) -> Check:
    args = _runtime_args(f)
    spec = _opt(args, "--hook-spec")
    if not spec:
        return Check("hook-spec", SKIP, "no daemon-wide --hook-spec")
    from hookbin import policy as hookpolicy
    from hookbin import spec as hookspec
    droot = _opt(args, "--docker-root") or (f.get("info") or {}).get("DockerRootDir") or "/var/lib/docker"
    try:
        hookspec.load_spec(str(_under(f["root"], spec)), droot, hookpolicy.load(f.get("policy_path")))
    except hookspec.SpecError as exc:
        return Check("hook-spec", FAIL, f"{spec}: " + "; ".join(exc.problems),
                     f"fix it (dockguard hookspec validate {spec}): every container start fails meanwhile")
    except hookpolicy.PolicyError as exc:
        return Check("hook-spec", FAIL, str(exc), "fix the policy's [hookspec] section")
    return Check("hook-spec", OK, f"{spec}: valid")


def check_policy(f) -> Check:
    from authz import policy as policies
    from authz.cli import summary
    path = f.get("policy_path")
    try:
        pol = policies.load(path)
    except policies.PolicyError as exc:
        return Check("policy", FAIL, str(exc), f"fix it (dockguard authz check-policy {path}); the "
                     "running plugin keeps its last good policy until then")
    s = summary(pol)
    detail = f"{s['source']}: valid, hash {s['policy_hash']}, mode {s['mode']}"
    if s["exceptions"]:
        detail += f", {len(s['exceptions'])} exception(s)"
    if pol.mode == "audit":
        return Check("policy", WARN, detail + ": nothing is refused (rollout)",
                     'once the audit lines show what you expect, set mode = "enforce" and reload '
                     "(systemctl reload dockguard-authz)")
    return Check("policy", OK, detail)


def check_healthd(f) -> Check:
    metrics = Path(f["healthd_state"]) / ".metrics.json"
    try:
        age = time.time() - metrics.stat().st_mtime
        doc = json.loads(metrics.read_text())
    except (OSError, ValueError):
        return Check("healthd", WARN, f"no {metrics}: healthd is not running here",
                     "systemctl enable --now dockguard-healthd (containers with dockguard.health.* "
                     "labels are not checked meanwhile)")
    if age > HEALTHD_STALE:
        return Check("healthd", FAIL, f"{metrics} last written {age:.0f} s ago: healthd stopped or hangs",
                     "systemctl restart dockguard-healthd; journalctl -u dockguard-healthd says why")
    if not doc.get("connected", True):
        return Check("healthd", FAIL, "healthd runs but has lost dockerd", "check --docker-host of dockguard-healthd")
    return Check("healthd", OK, f"running ({doc.get('watched', '?')} watched)")


def check_entitlements(f) -> Check:
    if "daemon_json_error" in f:
        return Check("buildkit", FAIL, f["daemon_json_error"], "fix daemon.json (dockerd will not start)")
    ents = ((f["daemon_json"].get("builder") or {}).get("entitlements") or {})
    loose = [k for k in ("network-host", "security-insecure") if ents.get(k) is not False]
    if loose:
        return Check("buildkit", WARN, "BuildKit may grant " + ", ".join(loose) + " to a build",
                     'dockguard install (sets builder.entitlements {"network-host": false, '
                     '"security-insecure": false} in daemon.json)')
    return Check("buildkit", OK, "network-host and security-insecure refused")


def check_stale_plugins(f) -> Check:
    dead = [e["path"] for e in f["plugin_entries"] if e.get("answers") is False
            or (e["path"].endswith((".spec", ".json")) and e.get("answers") is None)]
    if dead:
        return Check("stale-plugins", FAIL, "nothing answers behind " + ", ".join(dead)
                     + ": dockerd waits up to 15 s on each when it looks up an unknown driver",
                     "remove them (rm " + " ".join(dead) + ") or start the plugin they name")
    return Check("stale-plugins", OK, f"{len(f['plugin_entries'])} entr(y/ies), all answering")


def check_containers(f) -> list[Check]:
    if "containers" not in f:
        return [Check("dead-containers", SKIP, "dockerd not reachable")]
    dead = [c for c in f["containers"] if c.get("State") == "dead"]
    restarting = [c for c in f["containers"] if c.get("State") == "restarting"]
    name = lambda c: ((c.get("Names") or ["/" + c["Id"][:12]])[0]).lstrip("/")  # noqa: E731
    out = []
    if dead:
        out.append(Check("dead-containers", WARN, "Dead: " + ", ".join(name(c) for c in dead),
                         "the guide: once nothing holds their filesystem (docker diag pidns, lsof), "
                         "docker rm " + " ".join(name(c) for c in dead)))
    else:
        out.append(Check("dead-containers", OK, "none"))
    if restarting:
        out.append(Check("restarting", WARN, "restarting: " + ", ".join(name(c) for c in restarting),
                         "docker logs NAME says why; docker update --restart=no NAME stops the loop"))
    else:
        out.append(Check("restarting", OK, "none"))
    return out


def check_kernel(f) -> list[Check]:
    out = []
    if f["cgroup2"]:
        out.append(Check("kmem", OK, "cgroup v2: no separate kernel-memory limit (the kernel-memory rule "
                         "refuses asking for one)"))
    elif f["kmem"]:
        out.append(Check("kmem", OK, "cgroup v1 kernel memory accounting present"))
    else:
        out.append(Check("kmem", WARN, "no memory.kmem.limit_in_bytes: --kernel-memory is ignored",
                         "nothing to do unless a workload relies on it"))
    if not f["blkio_weight"]:
        out.append(Check("blkio-weight", WARN, "no blkio/io weight file: --blkio-weight has no effect "
                         "(the blkio-weight rule refuses it)", "use BFQ on cgroup v1, or cgroup v2 with io"))
    else:
        out.append(Check("blkio-weight", OK, "weight file present"))
    weighted = {d: s for d, s in f["schedulers"].items() if "[bfq]" in s or "[cfq]" in s}
    if f["schedulers"] and not weighted:
        active = ", ".join(f"{d} {s.split('[')[1].split(']')[0] if '[' in s else s}" for d, s in f["schedulers"].items())
        out.append(Check("disk-scheduler", WARN, f"no disk uses cfq/bfq ({active}): weights are not honoured",
                         "echo bfq > /sys/block/DEV/queue/scheduler (and a udev rule to keep it)"))
    else:
        out.append(Check("disk-scheduler", OK, ", ".join(f"{d}: {s}" for d, s in f["schedulers"].items())
                         or "no disks listed"))
    if f["lxcfs"]:
        out.append(Check("lxcfs", OK, "lxcfs mounted"))
    else:
        out.append(Check("lxcfs", WARN, "lxcfs is not mounted: lxcfs-hook cannot give containers their own "
                         "/proc/meminfo etc.", "apt install lxcfs (only if you use lxcfs-hook)"))
    return out


def check_preflight(f) -> Check:
    if f.get("api") is None:
        return Check("preflight", SKIP, "dockerd not reachable")
    from authz import policy as policies
    from dockguard import preflight
    try:
        pol = policies.load(f.get("policy_path"))
        entries = preflight.scan(preflight.ApiDaemon(f.get("url"), timeout=30), pol)
    except Exception as exc:  # noqa: BLE001 - reported as the check's failure
        return Check("preflight", FAIL, f"cannot scan: {exc}", "see dockguard preflight")
    blocking = [e for e in entries if e.blocking]
    if blocking:
        return Check("preflight", FAIL, f"{len(blocking)} container(s) violate the policy and would start "
                     "unjudged: " + ", ".join(e.name for e in blocking),
                     "dockguard preflight --disarm, or remove and re-create them within the policy")
    if entries:
        return Check("preflight", WARN, f"{len(entries)} container(s) violate the policy (refused at their "
                     "next start): " + ", ".join(e.name for e in entries), "dockguard preflight lists why")
    return Check("preflight", OK, "no container violates the policy")


def check_creds(f) -> Check:
    from dockguard.creds.enable import plaintext_auths
    path = f["docker_config"]
    try:
        plain = plaintext_auths(path) if os.path.exists(path) else []
    except Exception as exc:  # noqa: BLE001
        return Check("registry-logins", WARN, f"{path}: {exc}", "")
    if plain:
        return Check("registry-logins", FAIL, f"{path} holds readable logins for " + ", ".join(plain),
                     "dockguard creds enable (moves them into the encrypted store)")
    return Check("registry-logins", OK, f"{path}: no plain-text logins")


def run_checks(f) -> list[Check]:
    out = [check_daemon(f), check_plugin(f), check_runtime(f), check_hooks_dir(f), check_hook_spec(f),
           check_policy(f), check_healthd(f), check_entitlements(f), check_stale_plugins(f)]
    out += check_containers(f)
    out += check_kernel(f)
    out += [check_preflight(f), check_creds(f)]
    return out


def render(checks: list[Check]) -> str:
    lines = [f"{'CHECK':<17}{'STATUS':<7}DETAIL"]
    for c in checks:
        lines.append(f"{c.id:<17}{c.status:<7}{c.detail}")
        if c.fix and c.status in (WARN, FAIL):
            lines.append(f"{'':<24}fix: {c.fix}")
    n = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL, SKIP)}
    lines.append(f"{n[OK]} ok, {n[WARN]} warning(s), {n[FAIL]} failure(s), {n[SKIP]} skipped")
    return "\n".join(lines) + "\n"


def register(sub, name):
    p = sub.add_parser(name, help="check that the suite is in place and working on this host "
                                  "(exit 1 on a failure)", description=__doc__.splitlines()[0])
    p.add_argument("--docker-host", help="the daemon (default: $DOCKER_HOST, else unix:///var/run/docker.sock)")
    p.add_argument("--root", default="/", help="read host files under this directory (a staged root; default /)")
    p.add_argument("--plugin-dir", action="append", default=None, metavar="DIR",
                   help="plugin discovery dir; repeatable (default: ROOT/run/docker/plugins and "
                        "ROOT/etc/docker/plugins)")
    p.add_argument("--policy", metavar="FILE",
                   help="policy file (default: ROOT/etc/dockguard/policy.toml if present, else built-in)")
    p.add_argument("--healthd-state-dir", metavar="DIR",
                   help="healthd's state dir (default ROOT/var/lib/dockguard/health)")
    p.add_argument("--docker-config", metavar="FILE",
                   help="docker CLI config whose logins are checked (default ROOT/root/.docker/config.json)")
    add_json(p)
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args) -> int:
    f = gather(docker_host=args.docker_host, root=args.root, plugin_dirs=args.plugin_dir,
               policy=args.policy, healthd_state=args.healthd_state_dir, docker_config=args.docker_config)
    checks = run_checks(f)
    if args.json:
        print_json({"checks": [c.as_json() for c in checks],
                    "failures": sum(c.status == FAIL for c in checks)})
    else:
        sys.stdout.write(render(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0
