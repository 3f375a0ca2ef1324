"""Where a mount source really is on the host, pinned so that what is judged is what runc mounts.

A bind source is a path, and a path is resolved again at every use: a directory swapped for a
symlink after the check (issue 7, hole 8) would be judged as one thing and mounted as another.
So the wrapper opens each source once (`O_PATH`: the kernel resolves it, symlinks included,
to one object), judges *that object* (its path as the kernel names it, the mount it lies on,
and what that mount really is on the host), and makes runc mount that very object.

runc 1.1 takes a path, and `mount(2)` will not bind from `/proc/<pid>/fd/<n>` of a mount that
lives in another mount namespace (runc init runs in a new one: EINVAL, checked with runc 1.1.5).
So the wrapper first moves itself into a mount namespace of its own (a copy of the host's,
made a slave so nothing propagates back), opens the sources there, mounts a private tmpfs on
STAGE_DIR, bind-mounts each judged fd onto `STAGE_DIR/<n>` and names those in config.json, then
execs runc. Nobody but this process sees the staging mounts (they are in its namespace only),
so nothing can swap them; runc init, cloned from this namespace, binds from them; when runc
create exits the namespace, and the staging mounts with it, are gone: nothing to clean up.

What lies on a mount is read from /proc/self/mountinfo through the fd's `mnt_id`
(/proc/self/fdinfo): a local volume's `_data` may have a proc, sysfs, a block device's
filesystem, an overlay of host directories or a bind of a host directory mounted on it by
dockerd just before the start. Stdlib (and ctypes, for the binds only); pure parts take
plain data.
"""
from __future__ import annotations

import errno
import os
import stat

from dockguard import util

# Kernel filesystems that are the host's own wherever they are mounted, with the path where
# the host shows them: a volume (or mount) of these types is that host path.
PSEUDO_FS = {
    "proc": "/proc", "sysfs": "/sys", "devtmpfs": "/dev", "devpts": "/dev/pts",
    "cgroup": "/sys/fs/cgroup", "cgroup2": "/sys/fs/cgroup", "debugfs": "/sys/kernel/debug",
    "tracefs": "/sys/kernel/tracing", "securityfs": "/sys/kernel/security",
    "bpf": "/sys/fs/bpf", "configfs": "/sys/kernel/config", "pstore": "/sys/fs/pstore",
    "efivarfs": "/sys/firmware/efi/efivars", "fusectl": "/sys/fs/fuse/connections",
    "binfmt_misc": "/proc/sys/fs/binfmt_misc", "hugetlbfs": "/dev/hugepages",
    "mqueue": "/dev/mqueue",  # the message queues of the IPC namespace that mounted it
}
# Filesystems whose content is nothing of the host's (a fresh instance per mount).
FRESH_FS = frozenset({"tmpfs", "ramfs"})
OVERLAY_DIR_OPTS = ("lowerdir", "upperdir", "workdir")


class PinError(util.DockguardError):
    """A source that cannot be opened, identified or staged: the wrapper refuses the start.

    `source` (the path as config.json names it) and `why` (what is wrong with it) when the
    problem is the source's own; the judge adds the destination and the hint."""

    def __init__(self, msg: str, source: str | None = None, why: str | None = None):
        super().__init__(msg)
        self.source, self.why, self.destination = source, why, None


def _source_error(source: str, why: str) -> PinError:
    return PinError(f"bind source {source} {why}", source, why)


GONE = "was removed after it was judged (the kernel mounts no removed directory or file)"


# --- /proc/self/mountinfo (pure) ----------------------------------------------------------

def _unescape(field: str) -> str:
    r"""mountinfo escapes space, tab, newline and backslash as \ooo."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 3 < len(field) + 1 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(c)
            i += 1
    return "".join(out)


class MountEntry:
    __slots__ = ("id", "dev", "root", "point", "fstype", "source", "super_opts")

    def __init__(self, id, dev, root, point, fstype, source, super_opts):
        self.id, self.dev, self.root, self.point = id, dev, root, point
        self.fstype, self.source, self.super_opts = fstype, source, super_opts

    def __repr__(self):
        return f"MountEntry({self.id}, {self.dev}, {self.root!r}, {self.point!r}, {self.fstype!r}, {self.source!r})"


def parse_mountinfo(text: str) -> dict[int, MountEntry]:
    """mountinfo text -> {mount id: entry}. Lines that do not parse are skipped."""
    out = {}
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        f, r = left.split(" "), right.split(" ")
        if len(f) < 6 or len(r) < 2 or not f[0].isdigit():
            continue
        out[int(f[0])] = MountEntry(int(f[0]), f[2], _unescape(f[3]), _unescape(f[4]), r[0],
                                    _unescape(r[1]), _unescape(r[2]) if len(r) > 2 else "")
    return out


within = util.within


def _rel(path: str, top: str) -> str:
    return "" if top == "/" and path == "/" else path[len(top.rstrip("/")):]


def translate(fs_path: str, dev: str, mounts, exclude, avoid_under: str | None = None) -> str | None:
    """The host path showing `fs_path` of filesystem `dev`: the mount of that filesystem whose
    root holds it most closely (not one of `exclude`, e.g. the volume mount itself, nor one
    mounted below `avoid_under`: dockerd's own volume and helper mounts under its root)."""
    best = None
    below = avoid_under.rstrip("/") + "/" if avoid_under else None
    for m in mounts:
        if m.dev != dev or m.id in exclude or not within(fs_path, m.root):
            continue
        if below and m.point.startswith(below):
            continue
        if best is None or len(m.root) > len(best.root):
            best = m
    if best is None:
        return None
    rest = _rel(fs_path, best.root)
    return (best.point.rstrip("/") + rest) or "/"


def overlay_dirs(super_opts: str) -> list[str]:
    """lowerdir/upperdir/workdir paths of an overlay mount's options."""
    out = []
    for opt in super_opts.split(","):
        key, _, value = opt.partition("=")
        if key in OVERLAY_DIR_OPTS and value:
            out += [p for p in value.split(":") if p]
    return out


def mount_host_paths(path: str, entry: MountEntry, mounts: dict[int, MountEntry],
                     volume: bool = True, avoid_under: str | None = None) -> list[str]:
    """What host paths an object at `path` on mount `entry` is, beyond `path` itself (pure).

    A bind of a host directory shows the directory (by the filesystem and root it shares with
    the host's own mount); a kernel filesystem its host path; a block device's filesystem
    mounted again the device, or the host path it is already mounted at; an overlay its
    directories. A fresh tmpfs, or a network filesystem, is nothing of the host's.
    `volume`: the mount is one dockerd made for a volume, so a filesystem mounted nowhere else
    on the host is judged by its device; otherwise `path` is already where the host shows it.
    """
    out = []
    rel = _rel(path, entry.point) if within(path, entry.point) else ""
    fs_path = (entry.root.rstrip("/") + rel) or "/"
    if entry.fstype in PSEUDO_FS:
        out.append((PSEUDO_FS[entry.fstype].rstrip("/") + fs_path) if fs_path != "/" else PSEUDO_FS[entry.fstype])
    elif entry.fstype == "overlay":
        out += overlay_dirs(entry.super_opts)
    elif entry.fstype not in FRESH_FS:
        host = translate(fs_path, entry.dev, mounts.values(), {entry.id}, avoid_under)
        if host is not None:
            out.append(host)
        elif volume and entry.source.startswith("/"):
            out.append(entry.source)  # a device (or image file) mounted nowhere else
    return [p for p in out if p != path]


# --- the edge: open, identify, hand over --------------------------------------------------

class Pinned:
    """One opened source: its fd, what the kernel calls it, its stat and the mount it lies on."""
    __slots__ = ("source", "fd", "path", "st", "mnt_id")

    def __init__(self, source, fd, path, st, mnt_id):
        self.source, self.fd, self.path, self.st, self.mnt_id = source, fd, path, st, mnt_id

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.st.st_mode)


def pin(source: str) -> Pinned:
    """Open `source` once, O_PATH: the object is fixed from here on, whatever the path does."""
    if not source.startswith("/") or "\0" in source:
        raise PinError(f"bind source {source!r} is not an absolute path")
    try:
        fd = os.open(source, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            # dockerd makes a missing -v source before the start: it was removed since (or
            # is a symlink to nothing)
            raise _source_error(source, "does not exist (removed after dockerd prepared the "
                                        "container, or a symlink to nothing)") from None
        raise _source_error(source, f"cannot be opened: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        path = os.readlink(f"/proc/self/fd/{fd}")
        mnt_id = None
        with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
            for line in f.read().decode().splitlines():
                if line.startswith("mnt_id:"):
                    mnt_id = int(line.split(":", 1)[1])
    except (OSError, ValueError) as exc:
        os.close(fd)
        raise _source_error(source, f"cannot be identified: {exc}") from None
    if not path.startswith("/") or mnt_id is None:
        os.close(fd)
        raise _source_error(source, f"resolves to {path!r}, which is not a host path")
    return Pinned(source, fd, path, st, mnt_id)


def removed(p: Pinned) -> bool:
    """The pinned object's name is gone from the host (rmdir, unlink, renamed over): the kernel
    refuses to bind it (ENOENT), now and from a staging mount of it, so runc could not mount
    it either. /proc names such an object "<path> (deleted)"; a rename alone keeps it usable."""
    try:
        now = os.readlink(f"/proc/self/fd/{p.fd}")
        st = os.fstat(p.fd)
    except OSError:
        return True
    return st.st_nlink == 0 or (now.endswith(" (deleted)") and now != p.path)


def read_mountinfo() -> dict[int, MountEntry]:
    with open("/proc/self/mountinfo", "rb") as f:
        return parse_mountinfo(f.read().decode("utf-8", "surrogateescape"))


# --- a mount namespace of our own, and the staging binds ----------------------------------

STAGE_DIR = "/run/dockguard/pins"
CLONE_NEWNS = util.CLONE_NEWNS
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE, MS_SLAVE = 4096, 16384, 1 << 18, 1 << 19


def _call(ret: int, what: str) -> None:
    try:
        util.check_errno(ret, what)
    except OSError as exc:
        raise PinError(exc.strerror) from None


def private_namespace() -> None:
    """Move this process into a copy of its mount namespace whose mounts are slaves: host
    mounts still propagate in, nothing made here propagates out."""
    libc = util.libc()
    _call(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _call(libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None), "make / rslave")


def stage_dir() -> str:
    """A fresh tmpfs on STAGE_DIR, in this (private) namespace only."""
    try:
        os.makedirs(STAGE_DIR, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise PinError(f"cannot create {STAGE_DIR}: {exc.strerror}") from None
    libc = util.libc()
    _call(libc.mount(b"dockguard-pins", STAGE_DIR.encode(), b"tmpfs",
                     MS_NOSUID | MS_NODEV | MS_NOEXEC, b"mode=0700,size=64k"),
          f"mount a tmpfs on {STAGE_DIR}")
    _call(libc.mount(None, STAGE_DIR.encode(), None, MS_PRIVATE, None), f"make {STAGE_DIR} private")
    return STAGE_DIR


def stage(p: Pinned, name: str, directory: str) -> str:
    """Bind the pinned object (with what is mounted below it) onto directory/name."""
    target = os.path.join(directory, name)
    mode = p.st.st_mode
    try:
        if stat.S_ISDIR(mode):
            os.mkdir(target, 0o700)
        else:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except OSError as exc:
        raise PinError(f"cannot make {target}: {exc.strerror}") from None
    libc = util.libc()
    try:
        _call(libc.mount(f"/proc/self/fd/{p.fd}".encode(), target.encode(), None, MS_BIND | MS_REC, None),
              f"bind {p.path} (pinned) onto {target}")
    except PinError as exc:
        if removed(p):
            raise _source_error(p.source, GONE) from None
        raise _source_error(p.source, f"cannot be staged for runc ({p.path} onto {target}): {exc}") from None
    return target
