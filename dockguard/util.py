"""Small helpers every component shares, each written once.

Stdlib only and cheap to import: dockguard-runtime and the hook programs run under
`python -I -S` on every container create, so this module imports `os` alone at load time;
ctypes, socket, subprocess and http.client are imported by the helper that needs them.
"""
from __future__ import annotations

import os

# --- constants shared across packages ------------------------------------------------------

HOOK_SPEC_LABEL = "dockguard.hook-spec"     # label/annotation naming a container's hook-spec
DEFAULT_DOCKER_ROOT = "/var/lib/docker"     # dockerd's --data-root default
RUNC_CANDIDATES = ("/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc")

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000


# --- errors --------------------------------------------------------------------------------

class DockguardError(Exception):
    """The common base of every error dockguard reports with its own message (a bad policy,
    a failed lookup, an untrusted hook-spec, a store that cannot be used, ...): what a CLI
    prints as `dockguard: error: MESSAGE`, never as a traceback. Each component's error
    also keeps its historical base (ValueError, OSError, RuntimeError) for its callers."""


# --- paths ---------------------------------------------------------------------------------

def within(path: str, top: str) -> bool:
    """`path` is `top` or below it, by whole components (`/a/bc` is not in `/a/b`); `/`
    holds every absolute path. Plain strings: callers normalise first where they must."""
    top = top.rstrip("/")
    return path == top or path.startswith(top + "/") or (top == "" and path == "/")


def device_node(path: str, directories: bool = False) -> tuple[str, int, int] | None:
    """What a host path is as a device: ("b" | "c", major, minor); ("d", 0, 0) for a directory
    when `directories`; None otherwise or when it cannot be seen."""
    import stat
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if stat.S_ISBLK(st.st_mode):
        return ("b", os.major(st.st_rdev), os.minor(st.st_rdev))
    if stat.S_ISCHR(st.st_mode):
        return ("c", os.major(st.st_rdev), os.minor(st.st_rdev))
    if directories and stat.S_ISDIR(st.st_mode):
        return ("d", 0, 0)
    return None


def find_executable(name: str, candidates: tuple[str, ...] = ()) -> str | None:
    """The first executable of `candidates`, else `name` on $PATH (no shutil: see above)."""
    for cand in candidates:
        if os.access(cand, os.X_OK):
            return cand
    for d in os.environ.get("PATH", "").split(os.pathsep):
        cand = os.path.join(d, name)
        if d and os.access(cand, os.X_OK) and not os.path.isdir(cand):
            return cand
    return None


# --- files ---------------------------------------------------------------------------------

def atomic_write(path, data: str | bytes, mode: int | None = 0o644, *, durable: bool = True,
                 root_owned: bool = False, dir_fd: int | None = None) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`: readers see
    the old or the new file, never half of one.

    The temporary file is created exclusively and never through a link (a leftover of a
    crashed writer is removed first). `mode`: the new file's mode; None keeps the mode of the
    file replaced (0o644 when there is none). `durable=False` skips the fsync, for files read
    at once and never after a crash. `root_owned`: chown 0:0 when running as root.
    `dir_fd`: `path` is a name in that directory."""
    path = os.fspath(path)
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name}.{os.getpid()}.tmp")
    if mode is None:
        try:
            mode = os.stat(path, dir_fd=dir_fd).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
    try:
        os.unlink(tmp, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                 dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            if root_owned and os.geteuid() == 0:
                os.fchown(f.fileno(), 0, 0)
            os.fchmod(f.fileno(), mode)
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        raise


# --- time ----------------------------------------------------------------------------------

def utc_stamp(now: float | None = None, digits: int = 6, truncate: bool = False) -> str:
    """RFC 3339 UTC time with `digits` fractional digits (0-9): 2024-05-01T12:00:00.123456Z.
    Rounded to the nearest, as datetime rounds (a stamp parsed back and written again is the
    same text); `truncate`: cut, as Go formats times (a stamp never runs ahead of the clock)."""
    import time
    now = time.time() if now is None else now
    whole = int(now // 1)
    frac = (now - whole) * 10 ** digits
    frac = int(frac) if truncate else round(frac)
    if frac == 10 ** digits:
        whole, frac = whole + 1, 0
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return text + (f".{frac:0{digits}d}Z" if digits else "Z")


# --- namespaces ----------------------------------------------------------------------------

_libc = None


def libc():
    """libc through ctypes (loaded once, on first use), errno kept."""
    global _libc
    if _libc is None:
        import ctypes
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
    return _libc


def check_errno(ret: int, what: str) -> None:
    """OSError(errno, "what: strerror") when a libc call returned non-zero."""
    if ret != 0:
        import ctypes
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int, nstype: int, what: str = "namespace") -> None:
    """Move this thread into the namespace behind `fd` (Python 3.11 has no os.setns)."""
    check_errno(libc().setns(fd, nstype), f"setns into {what}")


# --- processes -----------------------------------------------------------------------------

def spawn(argv: list[str], log_path=None, env: dict | None = None):
    """Start a long-lived child in a session of its own (stop it by its group), its output
    appended to `log_path` (or discarded)."""
    import subprocess
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
    finally:
        if log_path:
            out.close()


class NotReady(DockguardError):
    """A spawned child exited (`exited`), or did not get ready in time, before `ready()` held."""

    def __init__(self, what: str, exited: bool):
        super().__init__(what)
        self.exited = exited


def wait_ready(proc, ready, timeout: float, interval: float = 0.1) -> None:
    """Poll `ready()` until it holds; NotReady when `proc` exits first or `timeout` passes
    (the message says which: "exited with N" or "did not answer within Ns")."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NotReady(f"exited with {proc.returncode}", exited=True)
        if ready():
            return
        time.sleep(interval)
    raise NotReady(f"did not answer within {timeout}s", exited=False)


# --- HTTP over a unix socket ---------------------------------------------------------------

def unix_connection(path: str, timeout: float = 30.0, host: str = "docker"):
    """An http.client connection whose transport is the unix socket `path`."""
    import http.client
    import socket

    class UnixHTTPConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(self.timeout)
            self.sock.connect(path)

    return UnixHTTPConnection(host, timeout=timeout)


def plugin_implements(path, timeout: float = 2.0) -> list[str] | None:
    """POST /Plugin.Activate to a Docker plugin socket: the interfaces it implements
    (["authz"], ...), or None when nothing answers as a plugin."""
    import json
    try:
        status, body = unix_request(path, "POST", "/Plugin.Activate", b"", timeout, host="plugin",
                                    headers={"Connection": "close"})
        doc = json.loads(body) if status == 200 else None
    except (OSError, ValueError):
        return None
    impl = doc.get("Implements") if isinstance(doc, dict) else None
    return [str(i) for i in impl] if isinstance(impl, list) else None


def unix_request(path, method: str, url: str, body: bytes | None = None, timeout: float = 30.0,
                 headers: dict | None = None, host: str = "docker") -> tuple[int, bytes]:
    """One HTTP request over the unix socket `path`: (status, body). OSError when unreachable."""
    import http.client
    conn = unix_connection(os.fspath(path), timeout, host)
    try:
        conn.request(method, url, body=body, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except http.client.HTTPException as exc:
        raise OSError(f"{method} {url} over {path}: {exc!r}") from None
    finally:
        conn.close()
