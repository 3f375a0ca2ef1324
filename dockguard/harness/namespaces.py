"""Private mount and network namespaces for a private dockerd (hermetic on a busy host).

A private dockerd must neither see nor change the host's Docker state: without its own
namespaces it deletes the host's docker0 (`--bridge=none`), scans the host's
/run/docker/plugins (a stale socket there makes a volume lookup take 15 s), writes
/etc/docker/key.json and leaves mounts behind. So every private dockerd (with its containerd,
shims and hooks) runs inside a mount and a network namespace of its own:

- a *holder* process (`unshare --mount --net`, then `sleep infinity`) keeps them alive across
  dockerd restarts; dockerd is started in them with `nsenter`;
- inside, per-daemon directories are bound over the plugin discovery dirs
  (/run/docker/plugins, made if missing as dockerd itself would, and /etc/docker/plugins and
  /usr/lib/docker/plugins when present: nothing is created under /etc or /usr), so the
  daemon finds only the plugin sockets its owner puts in its own dir;
- the network namespace has loopback and an `uplink0` (a veth, 192.0.2.1/24, default route
  to nowhere) like a host's; dockerd makes its own docker0 there, so containers get the
  default bridge network (renaming a running container needs it on 26);
- the host's mounts at creation are visible inside (paths under /tmp, /var/lib/lxcfs); later
  host mounts are seen only where the host's mounts propagate (shared), since ours are slaves;
- identity (holder pid, its start time, the namespaces' inodes) is written to a state file,
  so a later process (`dockguard sandbox down`) can stop exactly what runs in them: the
  processes inside these namespaces and their descendants (containers), found by namespace,
  never by command-line match.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from dockguard import util

HOLDER_SH = r"""
set -e
while [ $# -ge 3 ]; do
  if [ "$3" = create ]; then mkdir -p "$2"; fi
  if [ -d "$2" ]; then mount --bind "$1" "$2"; fi
  shift 3
done
ip link set lo up
# a host-like uplink with the default route (TEST-NET-1, leads nowhere): what a hook sees as
# the host's network, e.g. the interface network-hook must never move
ip link add uplink0 type veth peer name uplink0p
ip addr add 192.0.2.1/24 dev uplink0
ip link set uplink0p up
ip link set uplink0 up
ip route add default via 192.0.2.254 dev uplink0
echo ready
exec sleep infinity </dev/null >/dev/null 2>&1
"""
KINDS = ("mnt", "net")


class NamespaceError(util.DockguardError, RuntimeError):
    """The private namespaces could not be made or entered."""


def ns_id(pid: int, kind: str) -> tuple[int, int] | None:
    """(device, inode) of a process's namespace: equal ids, same namespace."""
    try:
        st = os.stat(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None
    return st.st_dev, st.st_ino


def start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


@dataclass
class Bind:
    """A private directory bound over `target` inside the namespace. create: make the target
    on the host if missing (an empty directory); otherwise a missing target is left alone."""

    source: Path
    target: str
    create: bool = False


@dataclass
class Namespaces:
    state_path: Path
    binds: list[Bind] = field(default_factory=list)
    _proc: subprocess.Popen | None = None

    # ---- identity ----

    def _state(self) -> dict | None:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None

    @property
    def pid(self) -> int | None:
        """The holder's pid when it is alive and is the process we recorded (not a reused pid)."""
        st = self._state()
        if not st:
            return None
        pid = st.get("pid")
        if isinstance(pid, int) and start_time(pid) == st.get("start") \
                and all(ns_id(pid, k) == tuple(st[k]) for k in KINDS):
            return pid
        return None

    def ids(self, confirm_pid: int | None = None) -> dict[str, tuple[int, int]] | None:
        """The namespaces' ids if they are provably ours: the holder is alive, or (holder gone)
        `confirm_pid` (e.g. dockerd from its pidfile) is still inside the recorded namespaces."""
        st = self._state()
        if not st:
            return None
        ids = {k: tuple(st[k]) for k in KINDS}
        if self.pid is not None:
            return ids
        if confirm_pid and all(ns_id(confirm_pid, k) == ids[k] for k in KINDS):
            return ids
        return None

    def contains(self, pid: int) -> bool:
        """Is `pid` inside our namespaces (both of them)?"""
        ids = self.ids(confirm_pid=pid)
        return bool(ids) and all(ns_id(pid, k) == ids[k] for k in KINDS)

    # ---- lifecycle ----

    def ensure(self, timeout: float = 20.0) -> int:
        """The holder's pid, starting it (and making the namespaces) when not alive."""
        pid = self.pid
        if pid is not None:
            return pid
        argv = ["unshare", "--mount", "--net", "--propagation", "slave", "--", "/bin/sh", "-c", HOLDER_SH, "holder"]
        for b in self.binds:
            Path(b.source).mkdir(parents=True, exist_ok=True)
            argv += [str(b.source), b.target, "create" if b.create else "-"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        line = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            if line:
                break
        if line.strip() != b"ready":
            err = b""
            if proc.poll() is None:
                proc.kill()
            try:
                _, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            raise NamespaceError(f"could not make private namespaces: {err.decode(errors='replace').strip()}")
        proc.stdout.close()
        proc.stderr.close()
        self._proc = proc
        state = {"pid": proc.pid, "start": start_time(proc.pid)}
        for k in KINDS:
            state[k] = ns_id(proc.pid, k)
        if state["start"] is None or any(state[k] is None for k in KINDS) or state["net"] == ns_id(os.getpid(), "net"):
            proc.kill()
            raise NamespaceError("the namespace holder vanished or shares our namespaces")
        util.atomic_write(self.state_path, json.dumps(state), durable=False)
        return proc.pid

    def enter_argv(self, argv: list[str], *, mount: bool = True, net: bool = True) -> list[str]:
        """argv run inside the namespaces (nsenter execs it: the pid is the program's own)."""
        pid = self.pid
        if pid is None:
            raise NamespaceError(f"no private namespaces running ({self.state_path})")
        return ["nsenter", f"--target={pid}", *(["--mount"] if mount else []),
                *(["--net"] if net else []), "--", *argv]

    def members(self, confirm_pid: int | None = None) -> list[int]:
        """Every process inside the namespaces (but the holder) and all their descendants:
        dockerd, containerd, shims, hooks, and the containers started by them."""
        ids = self.ids(confirm_pid)
        if not ids:
            return []
        holder = self.pid
        children: dict[int, list[int]] = {}
        inside: set[int] = set()
        me = os.getpid()
        for p in psutil.process_iter(["pid", "ppid"]):
            pid, ppid = p.info["pid"], p.info["ppid"]
            children.setdefault(ppid, []).append(pid)
            if pid not in (me, holder) and any(ns_id(pid, k) == ids[k] for k in KINDS):
                inside.add(pid)
        found, todo = set(), list(inside)
        while todo:
            pid = todo.pop()
            if pid in found or pid in (me, holder):
                continue
            found.add(pid)
            todo += children.get(pid, [])
        return sorted(found)

    def kill_members(self, confirm_pid: int | None = None, timeout: float = 30.0) -> list[int]:
        """SIGKILL what runs inside (see members) until nothing does: a process may be born
        while the others die (a shim's cleanup) or take a while to go (busy machine)."""
        killed: list[int] = []
        deadline = time.monotonic() + timeout
        while True:
            found = self.members(confirm_pid)
            if not found or time.monotonic() > deadline:
                return killed
            procs = []
            for pid in found:
                try:
                    p = psutil.Process(pid)
                    p.kill()
                    procs.append(p)
                    killed.append(pid)
                except psutil.Error:
                    pass
            psutil.wait_procs(procs, timeout=max(0.1, min(5.0, deadline - time.monotonic())))

    def stop(self, confirm_pid: int | None = None) -> None:
        """Kill everything inside, then the holder: the namespaces (and every mount made in
        them) go away with their last process."""
        self.kill_members(confirm_pid)
        pid = self.pid
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if self._proc is not None and self._proc.pid == pid:
                self._proc.wait(10)
            else:
                try:
                    psutil.Process(pid).wait(10)
                except psutil.Error:
                    pass
        self._proc = None
        try:
            self.state_path.unlink()
        except FileNotFoundError:
            pass


CLONE_NEWNET = 0x40000000


class PortForward:
    """HOST:PORT inside a network namespace relayed to HOST:PORT in ours (the host's).

    For tests whose service listens on the host's loopback (a registry) while the daemon that
    must reach it runs in its own netns. The listening socket is made by a short-lived thread
    that enters the netns (a socket stays in the netns it was made in); everything else runs
    in threads that never leave the host's netns.
    """

    def __init__(self, netns_path: str, port: int, host: str = "127.0.0.1"):
        import socket
        import threading
        from dockguard.util import setns

        self.addr = (host, port)
        self._conns: list = []
        made: dict = {}

        def make() -> None:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, CLONE_NEWNET, f"the netns {netns_path}")   # this thread only, then it ends
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(self.addr)
                s.listen(128)
                made["sock"] = s
            except OSError as e:
                made["error"] = e
            finally:
                os.close(fd)

        t = threading.Thread(target=make, daemon=True)
        t.start()
        t.join()
        if "error" in made:
            raise NamespaceError(f"cannot listen on {host}:{port} in {netns_path}: {made['error']}")
        self._listener = made["sock"]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading
        while True:
            try:
                inner, _ = self._listener.accept()
            except OSError:
                return
            try:
                outer = socket.create_connection(self.addr, timeout=10)
                outer.settimeout(None)
            except OSError:
                inner.close()
                continue
            self._conns += [inner, outer]
            for a, b in ((inner, outer), (outer, inner)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:
        import socket
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        for s in [self._listener, *self._conns]:
            try:
                s.close()
            except OSError:
                pass
