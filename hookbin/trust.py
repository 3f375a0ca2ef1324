"""Is a file something the host granted? Root's alone, all the way down from `/`.

A file is trusted when it and every directory above it (symlinks resolved first) are owned
by root and writable by neither group nor others: then only root can have written it, or
replaced it, or swapped a directory above it. The check is made the way a setuid program
makes it: walk from `/` with `openat(..., O_PATH | O_NOFOLLOW)` one component at a time,
`fstat` each fd, and hand back the fd that was checked, so the caller reads (or writes
into) exactly what was judged, never the path again. A symlink appearing mid-walk (swapped
after the path was resolved) is refused, not followed.

`judge` is the pure rule over plain stat data; `open_trusted` is the edge. Stdlib only.
"""
from __future__ import annotations

import errno
import os
import stat

from dockguard import util

WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


class Untrusted(util.DockguardError):
    """Not something only root could have put there; the message says which component."""


def judge(path: str, uid: int, mode: int, *, last: bool, want: str = "file") -> str | None:
    """Why one component of a walk is not trusted (None: it is). Pure.

    `want` is what the last component must be: "file" (regular) or "dir".
    """
    if stat.S_ISLNK(mode):
        return f"{path} is a symlink (changed while being checked?)"
    if not last or want == "dir":
        if not stat.S_ISDIR(mode):
            return f"{path} is not a directory"
    elif not stat.S_ISREG(mode):
        return f"{path} is not a regular file"
    if uid != 0:
        return f"{path} is owned by uid {uid}, not root"
    if mode & WRITABLE_BY_OTHERS:
        return f"{path} is writable by group or others (mode {stat.S_IMODE(mode):04o})"
    return None


def judge_chain(nodes, want: str = "file") -> list[str]:
    """Problems of a whole walk given as [(path, uid, mode), ...] from `/` down. Pure."""
    problems = []
    for i, (path, uid, mode) in enumerate(nodes):
        problem = judge(path, uid, mode, last=i == len(nodes) - 1, want=want)
        if problem:
            problems.append(problem)
    return problems


def components(resolved: str) -> list[str]:
    """`/a/b/c` -> ["a", "b", "c"] (the path is already absolute and normalised). Pure."""
    return [p for p in resolved.split("/") if p]


def resolve(path: str) -> str:
    """The absolute path with every symlink resolved; Untrusted when it does not exist."""
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise Untrusted(f"{path!r} is not an absolute path")
    try:
        return os.path.realpath(path, strict=True)
    except OSError as exc:
        raise Untrusted(f"{path} cannot be resolved: {exc.strerror or exc}") from None


def walk(resolved: str, want: str = "file") -> tuple[int, os.stat_result]:
    """An O_PATH fd for `resolved`, every component judged on the way; Untrusted otherwise."""
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        parts = components(resolved)
        problem = judge("/", st.st_uid, st.st_mode, last=not parts, want=want)
        if problem:
            raise Untrusted(problem)
        here = ""
        for i, part in enumerate(parts):
            here += "/" + part
            last = i == len(parts) - 1
            flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
            if not last or want == "dir":
                flags |= os.O_DIRECTORY
            try:
                nfd = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise Untrusted(f"{here} changed while being checked (now a symlink or not a "
                                    "directory)") from None
                raise Untrusted(f"{here}: {exc.strerror or exc}") from None
            os.close(fd)
            fd = nfd
            st = os.fstat(fd)
            problem = judge(here, st.st_uid, st.st_mode, last=last, want=want)
            if problem:
                raise Untrusted(problem)
        return fd, st
    except BaseException:
        os.close(fd)
        raise


def open_trusted(path: str, want: str = "file") -> tuple[int, str]:
    """(fd, resolved path) for a trusted file (fd open for reading) or directory (an O_PATH fd,
    usable as `dir_fd`). The caller closes the fd."""
    resolved = resolve(path)
    pfd, st = walk(resolved, want)
    if want == "dir":
        return pfd, resolved
    try:
        # Reopen the very inode judged (no path lookup, no device opened by mistake: it is
        # a regular file), for reading.
        fd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise Untrusted(f"{resolved}: cannot open: {exc.strerror or exc}") from None
    finally:
        os.close(pfd)
    again = os.fstat(fd)
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise Untrusted(f"{resolved} changed while being checked")
    return fd, resolved


def check_trusted(path: str, want: str = "file") -> tuple[str, os.stat_result]:
    """(resolved path, stat) when trusted; Untrusted otherwise. Nothing is left open."""
    resolved = resolve(path)
    fd, st = walk(resolved, want)
    os.close(fd)
    return resolved, st


def within(path: str, directory: str) -> bool:
    """`path` is `directory` itself or below it, by whole components (`hooksX` is not in `hooks`)."""
    return util.within(os.path.normpath(path), os.path.normpath(directory))


def open_append_in(directory: str, name: str, mode: int = 0o640) -> int:
    """An O_APPEND fd for `directory/name`, created `mode` if missing, for a hook's log.

    `directory` must be trusted (created 0750 when missing, if its parent is trusted); the
    file is opened relative to the judged directory fd with O_NOFOLLOW, and must be a
    regular root-owned file with one link that group and others cannot write: no symlink,
    hard link, FIFO or device planted there leads the write anywhere else.
    """
    if "/" in name or name in ("", ".", ".."):
        raise Untrusted(f"{name!r} is not a plain file name")
    if not os.path.lexists(directory):
        pfd, _ = open_trusted(os.path.dirname(os.path.normpath(directory)) or "/", want="dir")
        try:
            os.mkdir(os.path.basename(os.path.normpath(directory)), 0o750, dir_fd=pfd)
        except FileExistsError:
            pass
        except OSError as exc:
            raise Untrusted(f"cannot create {directory}: {exc.strerror or exc}") from None
        finally:
            os.close(pfd)
    dfd, resolved = open_trusted(directory, want="dir")
    if resolved != os.path.normpath(directory):
        os.close(dfd)
        raise Untrusted(f"{directory} leads elsewhere ({resolved}): a log directory is not reached "
                        "through a symlink")
    try:
        flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                 | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            fd = os.open(name, flags, mode, dir_fd=dfd)
        except OSError as exc:
            raise Untrusted(f"{resolved}/{name}: {exc.strerror or exc}") from None
    finally:
        os.close(dfd)
    st = os.fstat(fd)
    problem = judge(f"{resolved}/{name}", st.st_uid, st.st_mode, last=True)
    if problem is None and st.st_nlink != 1:
        problem = f"{resolved}/{name} has {st.st_nlink} hard links"
    if problem:
        os.close(fd)
        raise Untrusted(problem)
    return fd
