"""`dockguard diag pidns CONTAINER`: why a `docker stop` hangs, following the guide's procedure.

The guide (共享pid namespace容器，子容器处于pause状态会使得父容器stop卡住): a container whose pid
namespace others share (`--pid container:X`) does not stop while a process in that namespace
cannot exit: one in uninterruptible sleep (D), stopped (T), or frozen because its container is
paused. This lists the pid namespace, every process and thread in it with its state, the paused
containers that share it, and the command that frees the stop (`docker unpause ...`).

Facts come from the daemon (inspect) and /proc (`--proc` for tests); `analyse` is pure.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from dockguard.clitools import add_json, fail, print_json

STUCK = {"D": "uninterruptible sleep (D)", "T": "stopped (T)", "t": "stopped by a tracer (t)"}


def _ns(proc: Path, pid) -> str | None:
    try:
        return os.readlink(proc / str(pid) / "ns" / "pid")
    except OSError:
        return None


def _stat_state(path: Path) -> tuple[str, str]:
    """(comm, state) from a /proc stat file (comm may hold spaces and parentheses)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "", "?"
    comm = text[text.find("(") + 1:text.rfind(")")]
    rest = text[text.rfind(")") + 2:].split()
    return comm, (rest[0] if rest else "?")


def _frozen(proc: Path, pid: int, cgroup_root: Path) -> bool:
    """The process's cgroup is frozen (freezer v1 FROZEN/FREEZING, or v2 cgroup.events frozen 1)."""
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        if "freezer" in ctrls.split(","):
            state = cgroup_root / "freezer" / path.lstrip("/") / "freezer.state"
            try:
                if state.read_text().strip() in ("FROZEN", "FREEZING"):
                    return True
            except OSError:
                pass
        if ctrls == "":
            events = cgroup_root / path.lstrip("/") / "cgroup.events"
            try:
                if "frozen 1" in events.read_text():
                    return True
            except OSError:
                pass
    return False


def processes_in(proc: Path, ns: str, cgroup_root: Path) -> list[dict]:
    out = []
    for d in proc.iterdir():
        if not d.name.isdigit() or _ns(proc, d.name) != ns:
            continue
        pid = int(d.name)
        comm, state = _stat_state(d / "stat")
        threads = []
        try:
            tids = sorted(int(t.name) for t in (d / "task").iterdir() if t.name.isdigit())
        except OSError:
            tids = []
        for tid in tids:
            _, tstate = _stat_state(d / "task" / str(tid) / "stat")
            threads.append({"tid": tid, "state": tstate})
        out.append({"pid": pid, "comm": comm, "state": state, "threads": threads,
                    "frozen": _frozen(proc, pid, cgroup_root)})
    return sorted(out, key=lambda p: p["pid"])


def analyse(target: dict, others: list[dict], ns: str | None, procs: list[dict], pid_ns_of) -> dict:
    """The report: pure over inspect documents, the processes found and a pid -> ns lookup."""
    tid, tname = target["Id"], target.get("Name", "").lstrip("/")
    refs = {f"container:{tid}", f"container:{tid[:12]}", f"container:{tname}"}
    by_pid = {}
    for c in [target] + others:
        p = (c.get("State") or {}).get("Pid") or 0
        if p:
            by_pid[p] = c.get("Name", "").lstrip("/")
    sharing, paused = [], []
    for c in others:
        mode = (c.get("HostConfig") or {}).get("PidMode") or ""
        pid = (c.get("State") or {}).get("Pid") or 0
        if mode in refs or (ns and pid and pid_ns_of(pid) == ns):
            name = c.get("Name", "").lstrip("/")
            sharing.append(name)
            if (c.get("State") or {}).get("Paused"):
                paused.append(name)
    stuck = []
    for p in procs:
        p["container"] = by_pid.get(p["pid"], "")
        why = [STUCK[t["state"]] + f" thread {t['tid']}" for t in p["threads"] if t["state"] in STUCK]
        if p["frozen"]:
            why.append("frozen (its container is paused)")
        if why:
            stuck.append({"pid": p["pid"], "comm": p["comm"], "why": why})
    commands = [f"docker unpause {n}" for n in paused]
    d_state = [s for s in stuck if any("(D)" in w for w in s["why"])]
    if d_state:
        commands.append("# D state: the process waits in the kernel (storage, NFS, a device); free what it "
                        "waits on (cat /proc/PID/stack): no signal reaches it")
    return {"container": tname, "id": tid[:12], "pid": (target.get("State") or {}).get("Pid") or 0,
            "pid_namespace": ns, "pid_mode": (target.get("HostConfig") or {}).get("PidMode") or "",
            "processes": procs, "sharing": sharing, "paused_sharing": paused, "stuck": stuck,
            "commands": commands}


def render(r: dict) -> str:
    lines = [f"container {r['container']} ({r['id']}), pid {r['pid']}, pid namespace {r['pid_namespace']}"
             + (f", --pid {r['pid_mode']}" if r["pid_mode"] else "")]
    lines.append(f"containers sharing it: {', '.join(r['sharing']) or 'none'}; paused: "
                 f"{', '.join(r['paused_sharing']) or 'none'}")
    lines.append(f"{'PID':>8} {'TID':>8} ST FROZEN CONTAINER        COMM")
    for p in r["processes"]:
        for t in p["threads"]:
            lines.append(f"{p['pid']:>8} {t['tid']:>8} {t['state']:<2} {'yes' if p['frozen'] else 'no':<6} "
                         f"{p['container'][:16]:<16} {p['comm']}")
    if r["stuck"]:
        lines.append("would hold a stop: " + "; ".join(f"{s['pid']} ({s['comm']}): {', '.join(s['why'])}"
                                                         for s in r["stuck"]))
    else:
        lines.append("nothing in this pid namespace would hold a stop")
    for c in r["commands"]:
        lines.append(f"run: {c}" if not c.startswith("#") else c)
    return "\n".join(lines) + "\n"


def pidns(container: str, docker_host: str | None, proc: Path, cgroup_root: Path) -> dict:
    import docker
    api = docker.APIClient(base_url=docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
                           version="auto", timeout=30)
    target = api.inspect_container(container)
    others = [api.inspect_container(c["Id"]) for c in api.containers(all=True) if c["Id"] != target["Id"]]
    pid = (target.get("State") or {}).get("Pid") or 0
    ns = _ns(proc, pid) if pid else None
    procs = processes_in(proc, ns, cgroup_root) if ns else []
    return analyse(target, others, ns, procs, lambda p: _ns(proc, p))


def register(sub, name):
    p = sub.add_parser(name, help="diagnose an operation that hangs (the guide's operations notes)")
    s = p.add_subparsers(dest="diag_cmd", required=True, metavar="COMMAND")
    q = s.add_parser("pidns", help="why a docker stop hangs: the container's pid namespace, its "
                                   "processes and threads, the paused containers sharing it")
    q.add_argument("container", help="name or id of the container whose stop hangs")
    q.add_argument("--docker-host", help="the daemon (default: $DOCKER_HOST, else unix:///var/run/docker.sock)")
    q.add_argument("--proc", default="/proc", type=Path, help="procfs to read (default %(default)s)")
    q.add_argument("--cgroup-root", default="/sys/fs/cgroup", type=Path,
                   help="cgroup filesystem, for the freezer state (default %(default)s)")
    add_json(q)
    q.set_defaults(func=cmd_pidns)


def cmd_pidns(args) -> int:
    import docker.errors
    try:
        r = pidns(args.container, args.docker_host, args.proc, args.cgroup_root)
    except docker.errors.NotFound:
        return fail(f"diag pidns: no such container: {args.container}")
    except docker.errors.DockerException as exc:
        return fail(f"diag pidns: the daemon: {exc}")
    if args.json:
        print_json(r)
    else:
        sys.stdout.write(render(r))
    if not r["pid"]:
        print("note: the container is not running: it has no pid namespace", file=sys.stderr)
    return 0
