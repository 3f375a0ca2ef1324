"""`lxcfs-hook [--log FILE] [--lxcfs-root DIR]`: container-sized /proc through lxcfs.

prestart: bind-mount lxcfs's /proc files (meminfo, cpuinfo, stat, uptime, diskstats,
swaps, loadavg) over the container's own, so `free` and `top` inside show the container's
limits. runc runs prestart hooks after the container's mounts exist but before pivot_root,
so we enter the container's mount namespace and mount onto `<rootfs>/proc/...`, where the
host's lxcfs mount is still visible. Other states: nothing to do.

It runs as root with arguments from a hook-spec, so it enforces the policy itself: the log
only directly in the policy's log_dir (opened safely), the lxcfs root one the policy lists.
"""
from __future__ import annotations

import json
import os
import sys

from dockguard import util
from hookbin import oci, trust
from hookbin import policy as hookpolicy

PROC_FILES = ("meminfo", "cpuinfo", "stat", "uptime", "diskstats", "swaps", "loadavg")
DEFAULT_ROOT = "/var/lib/lxcfs"
USAGE = "usage: lxcfs-hook [--log FILE] [--lxcfs-root DIR]"


def parse_args(argv: list[str]) -> dict:
    opts = {"log": None, "lxcfs-root": DEFAULT_ROOT}
    i = 0
    while i < len(argv):
        name, eq, value = argv[i].partition("=")
        if name not in ("--log", "--lxcfs-root"):
            raise ValueError(f"unexpected argument {argv[i]!r}")
        if not eq:
            if i + 1 >= len(argv):
                raise ValueError(f"{name} needs a value")
            i += 1
            value = argv[i]
        if not os.path.isabs(value):
            raise ValueError(f"{name} must be an absolute path (got {value!r})")
        opts[name[2:]] = value
        i += 1
    return opts


def policy_problems(opts: dict, policy, facts: dict) -> list[str]:
    """What the policy refuses in these arguments (pure)."""
    problems = []
    if opts["log"] is not None:
        problem = hookpolicy.log_path_problem(opts["log"], policy)
        if problem:
            problems.append(problem)
    if os.path.normpath(opts["lxcfs-root"]) not in policy.lxcfs_roots:
        problems.append(f"--lxcfs-root {opts['lxcfs-root']!r} is not one the policy lists "
                        f"({', '.join(policy.lxcfs_roots) or 'none'}; policy [hookspec] lxcfs_roots)")
    return problems


def lxcfs_mounted(root: str, mountinfo: str) -> bool:
    """Is a fuse.lxcfs filesystem mounted exactly at `root`? (pure, over /proc/self/mountinfo)"""
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if " - " not in line or len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        fstype = line.split(" - ", 1)[1].split(" ")[0]
        if mount_point == root and fstype.startswith("fuse.lxcfs"):
            return True
    return False


def available_files(root: str) -> list[str]:
    return [name for name in PROC_FILES if os.path.isfile(os.path.join(root, "proc", name))]


def open_log(path: str | None) -> int | None:
    """Opened before entering the container's mount namespace, so it is the host's file."""
    if not path:
        return None
    return trust.open_append_in(os.path.dirname(path), os.path.basename(path))


def log_event(fd: int | None, event: dict) -> None:
    if fd is None:
        return
    event = {"time": util.utc_stamp(digits=0, truncate=True), **event}
    os.write(fd, (json.dumps(event, sort_keys=True) + "\n").encode())


def mount_proc_files(state: dict, root: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        if not lxcfs_mounted(root, f.read()):
            raise oci.OciError(f"lxcfs is not running: no lxcfs mount at {root} (start it: lxcfs {root})")
    names = available_files(root)
    if "meminfo" not in names:
        raise oci.OciError(f"lxcfs at {root} has no proc/meminfo")
    rootfs = oci.rootfs_path(state["bundle"], oci.bundle_config(state["bundle"]))
    mnt_ns = oci.open_ns(state["pid"], "mnt")
    oci.setns(mnt_ns, oci.CLONE_NEWNS, f"mount namespace of pid {state['pid']}")
    mounted = []
    for name in names:
        target = os.path.join(rootfs, "proc", name)
        if not os.path.exists(target):
            continue
        oci.bind_mount(os.path.join(root, "proc", name), target)
        mounted.append(name)
    return mounted


def main(argv: list[str] | None = None, policy_path: str | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    state = log_fd = None
    try:
        opts = parse_args(argv)
        problems = policy_problems(opts, hookpolicy.load(policy_path), {})
        if problems:
            raise ValueError("; ".join(problems))
        log_fd = open_log(opts["log"])
        state = oci.read_state(sys.stdin)
        if state["status"] == "stopped":
            return 0
        if state["pid"] <= 0:
            raise oci.OciError(f"no container pid in the OCI state (status {state['status']})")
        mounted = mount_proc_files(state, opts["lxcfs-root"])
        log_event(log_fd, {"id": state["id"], "mounted": mounted})
    except ValueError as exc:
        print(f"lxcfs-hook: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    except (oci.OciError, trust.Untrusted, OSError) as exc:
        print(f"lxcfs-hook: {exc}", file=sys.stderr)
        try:
            log_event(log_fd, {"id": state and state["id"], "error": str(exc)})
        except OSError:
            pass
        return 1
    return 0
