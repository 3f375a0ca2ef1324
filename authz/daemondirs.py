"""The daemon's own directories: its data-root, exec-root and containerd's, wherever they are.

`docker info` reports DockerRootDir but not the exec-root (sockets of every container's
shim, netns files, the plugin sockets of a managed containerd...), and an operator may move
both. So we ask the kernel which process serves the docker socket we talk to (SO_PEERCRED:
the listener's pid, which nobody can fake), read its command line and its daemon.json the
way dockerd reads them (`--exec-root`, `--data-root` / 20.10's `-g`/`--graph`,
`--config-file`, `--containerd`), and accept the answer only when the data-root found equals
the DockerRootDir the daemon reports. With socket activation the listener is systemd: then
the daemon is the dockerd among the processes holding that same listening socket (it
inherited it).
containerd's root and state come the same way from the process serving its socket.

The parsing is pure (`dockerd_dirs`, `containerd_dirs`); the /proc and socket reading below
it is the edge.
"""
from __future__ import annotations

import json
import os
import socket
import struct
import tomllib
from dataclasses import dataclass

from dockguard.util import DEFAULT_DOCKER_ROOT
from dockguard.util import DockguardError

DEFAULT_CONFIG = "/etc/docker/daemon.json"
DEFAULT_DATA_ROOT = DEFAULT_DOCKER_ROOT
DEFAULT_EXEC_ROOT = "/var/run/docker"
DEFAULT_CONTAINERD_SOCK = "/run/containerd/containerd.sock"
DEFAULT_CONTAINERD_CONFIG = "/etc/containerd/config.toml"
DEFAULT_CONTAINERD_ROOT = "/var/lib/containerd"
DEFAULT_CONTAINERD_STATE = "/run/containerd"


class NotFound(DockguardError, RuntimeError):
    """The daemon's process or directories could not be identified."""


@dataclass(frozen=True, slots=True)
class DaemonDirs:
    data_root: str
    exec_root: str
    containerd_sock: str
    config_file: str
    no_new_privileges: bool = False  # --no-new-privileges or daemon.json's (20.10's info hides it)


def flag_values(argv: list[str], names: tuple[str, ...], shorts: tuple[str, ...] = ()) -> list[str]:
    """Values given to a string flag, in order (pflag: `--name v`, `--name=v`, `-s v`, `-sv`)."""
    out = []
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--":
            break
        for n in names:
            if a == f"--{n}" and i + 1 < len(argv):
                out.append(argv[i + 1])
                i += 1
                break
            if a.startswith(f"--{n}="):
                out.append(a[len(n) + 3:])
                break
        else:
            for s in shorts:
                if a == f"-{s}" and i + 1 < len(argv):
                    out.append(argv[i + 1])
                    i += 1
                    break
                if a.startswith(f"-{s}") and not a.startswith("--") and len(a) > 2:
                    out.append(a[2:].removeprefix("="))
                    break
        i += 1
    return out


GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")  # strconv.ParseBool, as pflag reads a bool


def bool_flag(argv: list[str], name: str) -> bool | None:
    """A pflag bool's last value (`--name`, `--name=false`); None when not given."""
    value = None
    for a in argv[1:]:
        if a == "--":
            break
        if a == f"--{name}":
            value = True
        elif a.startswith(f"--{name}="):
            value = a[len(name) + 3:] in GO_TRUE
    return value


def _last(values: list[str]) -> str:
    return values[-1] if values else ""


def _abs(path: str, cwd: str | None) -> str:
    """`path` made absolute against the process's working directory (None: unknown)."""
    if not path or path.startswith("/"):
        return os.path.normpath(path) if path else ""
    if cwd is None:
        raise NotFound(f"the relative path {path!r} cannot be resolved: the daemon's working "
                       "directory is unreadable")
    return os.path.normpath(os.path.join(cwd, path))


def config_file(argv: list[str], cwd: str | None = "/", env: dict | None = None, euid: int = 0) -> str:
    given = _last(flag_values(argv, ("config-file",)))
    if given:
        return _abs(given, cwd)
    if euid != 0 and env:
        base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "/"), ".config")
        return os.path.join(base, "docker", "daemon.json")
    return DEFAULT_CONFIG


def dockerd_dirs(argv: list[str], config: dict | None, cwd: str | None = "/", env: dict | None = None,
                 euid: int = 0) -> DaemonDirs:
    """dockerd's directories from its command line and daemon.json (flags win; dockerd
    refuses to start when both give one)."""
    config = config if isinstance(config, dict) else {}
    env = env or {}

    def pick(flags, shorts, keys, default):
        v = _last(flag_values(argv, flags, shorts))
        if not v:
            v = next((config[k] for k in keys if isinstance(config.get(k), str) and config[k]), "")
        return _abs(v, cwd) if v else default

    if euid != 0 and env.get("XDG_RUNTIME_DIR"):  # rootless dockerd's defaults
        exec_default = os.path.join(env["XDG_RUNTIME_DIR"], "docker")
        data_default = os.path.join(env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME", "/"), ".local/share"),
                                    "docker")
    else:
        exec_default, data_default = DEFAULT_EXEC_ROOT, DEFAULT_DATA_ROOT
    return DaemonDirs(
        data_root=pick(("data-root", "graph"), ("g",), ("data-root", "graph"), data_default),
        exec_root=pick(("exec-root",), (), ("exec-root",), exec_default),
        containerd_sock=pick(("containerd",), (), ("containerd",), DEFAULT_CONTAINERD_SOCK),
        config_file=config_file(argv, cwd, env, euid),
        no_new_privileges=(nnp if (nnp := bool_flag(argv, "no-new-privileges")) is not None
                           else config.get("no-new-privileges") is True),
    )


def containerd_dirs(argv: list[str], config: dict | None, cwd: str | None = "/") -> tuple[str, str]:
    """(root, state) of a containerd from its command line and config.toml."""
    config = config if isinstance(config, dict) else {}

    def pick(flag, key, default):
        v = _last(flag_values(argv, (flag,)))
        if not v and isinstance(config.get(key), str):
            v = config[key]
        return _abs(v, cwd) if v else default

    return pick("root", "root", DEFAULT_CONTAINERD_ROOT), pick("state", "state", DEFAULT_CONTAINERD_STATE)


def containerd_config_file(argv: list[str], cwd: str | None = "/") -> str:
    given = _last(flag_values(argv, ("config",), ("c",)))
    return _abs(given, cwd) if given else DEFAULT_CONTAINERD_CONFIG


# ---- the edge: sockets and /proc ----
#
# Under the shipped systemd unit (PrivateNetwork=yes, only CAP_DAC_READ_SEARCH) the plugin
# can read another root process's cmdline and status but not its fd/, cwd, root or environ
# (those need ptrace access), nor the host's /proc/net/unix. So every step below degrades:
# the socket's holders when visible, else dockerd processes of the host's pid namespace; a
# file through the process's root when readable, else the same path here; an unreadable
# cwd is unknown, and a relative path then fails the lookup.

@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    argv: list[str]
    cwd: str | None
    euid: int
    env: dict
    host_pidns: bool


def peer_pid(sock_path: str, timeout: float = 5.0) -> int | None:
    """The pid of the process listening on a unix socket (SO_PEERCRED), or None."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        pid, _uid, _gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                           struct.calcsize("3i")))
        return pid or None
    except OSError:
        return None
    finally:
        s.close()


def read_proc(pid: int) -> Proc | None:
    """A process's command line and ids (world-readable); cwd and environ when permitted."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode("utf-8", "surrogateescape") for a in f.read().split(b"\0")[:-1]]
        euid, nspids = -1, 1
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    euid = int(line.split()[2])
                elif line.startswith("NSpid:"):
                    nspids = len(line.split()) - 1
    except (OSError, ValueError, IndexError):
        return None
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        cwd = None
    env = {}
    if euid != 0:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                for item in f.read().split(b"\0"):
                    k, _, v = item.decode("utf-8", "surrogateescape").partition("=")
                    if k in ("XDG_RUNTIME_DIR", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "HOME"):
                        env[k] = v
        except OSError:
            pass
    return Proc(pid, argv, cwd, euid, env, nspids == 1) if argv else None


def read_config(pid: int, path: str, parse):
    """A config file as the process sees it (through its root, else the same path here),
    parsed. None when it does not exist; NotFound when it exists but cannot be read or parsed
    (its settings are unknown, so no answer would be honest)."""
    for candidate in (f"/proc/{pid}/root{path}", path):
        try:
            with open(candidate, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            if candidate == path:
                return None
            continue
        except OSError as exc:
            if candidate == path:
                raise NotFound(f"cannot read {path}: {exc.strerror}") from None
            continue
        try:
            return parse(data)
        except (ValueError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise NotFound(f"cannot parse {path}: {exc}") from None
    return None


def listening_inodes(sock_path: str) -> set[str]:
    """Inodes of the listening unix sockets bound at `sock_path` (this network namespace)."""
    out = set()
    try:
        with open("/proc/net/unix") as f:
            next(f, None)
            for line in f:
                cols = line.split()
                # Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening
                if len(cols) >= 8 and " ".join(cols[7:]) == sock_path and int(cols[3], 16) & 0x10000:
                    out.add(cols[6])
    except (OSError, ValueError):
        pass
    return out


def _pids() -> list[int]:
    return sorted(int(n) for n in os.listdir("/proc") if n.isdigit())


def socket_holders(inodes: set[str]) -> list[int]:
    """Pids holding an fd on one of these socket inodes (those whose fds we may read)."""
    want = {f"socket:[{i}]" for i in inodes}
    pids = []
    if not want:
        return pids
    for pid in _pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in want:
                    pids.append(pid)
                    break
            except OSError:
                continue
    return pids


def is_dockerd(argv: list[str]) -> bool:
    return bool(argv) and os.path.basename(argv[0]).startswith("dockerd")


def dockerd_processes() -> list[int]:
    """Root dockerd processes of the host's pid namespace (a container's process is in a
    pid namespace of its own: its status lists more than one NSpid)."""
    out = []
    for pid in _pids():
        proc = read_proc(pid)
        if proc and is_dockerd(proc.argv) and proc.euid == 0 and proc.host_pidns:
            out.append(pid)
    return out


def _same_path(a: str, b: str) -> bool:
    return bool(a) and bool(b) and (a == b or os.path.realpath(a) == os.path.realpath(b))


def _dirs_of(proc: Proc) -> DaemonDirs:
    config = read_config(proc.pid, config_file(proc.argv, proc.cwd, proc.env, proc.euid), json.loads)
    return dockerd_dirs(proc.argv, config, proc.cwd, proc.env, proc.euid)


def find_dockerd(sock_path: str, data_root: str) -> DaemonDirs:
    """The directories of the dockerd serving `sock_path` whose data-root is `data_root`.

    Candidates, in order: the processes holding the listening socket other than its creator
    (the daemon, when systemd created the socket), its creator (the daemon, when it listens
    itself), then the host's root dockerd processes (when the holders cannot be seen). Only
    a dockerd (argv[0]) counts: systemd's command line, read with dockerd's defaults, would
    pass for a daemon with default flags. The data-root must be the one the daemon reports."""
    creator = peer_pid(sock_path)
    real_sock = os.path.realpath(sock_path)
    holders = socket_holders(listening_inodes(sock_path) | listening_inodes(real_sock))
    candidates = [p for p in holders if p != creator] + ([creator] if creator else [])
    candidates += [p for p in dockerd_processes() if p not in candidates]
    seen = []
    for pid in candidates:
        proc = read_proc(pid)
        if proc is None:
            continue
        if not is_dockerd(proc.argv):
            seen.append(f"pid {pid} ({os.path.basename(proc.argv[0])}, not dockerd)")
            continue
        try:
            dirs = _dirs_of(proc)
        except NotFound as exc:
            seen.append(f"pid {pid} ({exc})")
            continue
        if _same_path(dirs.data_root, data_root):
            return dirs
        seen.append(f"pid {pid} ({os.path.basename(proc.argv[0])}, data-root {dirs.data_root})")
    raise NotFound(f"no dockerd serving {sock_path} has the daemon's data-root {data_root}"
                   + (f" (saw {'; '.join(seen)})" if seen else ""))


def find_containerd(sock_path: str) -> tuple[str, str] | None:
    """(root, state) of the containerd serving `sock_path`, or None when none answers there."""
    pid = peer_pid(sock_path)
    proc = read_proc(pid) if pid else None
    if proc is None:
        return None
    cfg = read_config(pid, containerd_config_file(proc.argv, proc.cwd), lambda b: tomllib.loads(b.decode()))
    return containerd_dirs(proc.argv, cfg, proc.cwd)
