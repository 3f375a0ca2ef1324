"""OCI configs as dockerd writes them, for the runtime judge's tests (no Docker needed).

BENIGN is dockerd 20.10's config.json for `docker run busybox true` (its seccomp profile cut
down to a refusing default); `config()` returns a deep copy with changes applied."""
from __future__ import annotations

import copy

ID = "0123456789abcdef" * 4
ROOT = "/var/lib/docker"
CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]

BENIGN = {
    "ociVersion": "1.0.2-dev",
    "process": {"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "/",
                "capabilities": {k: list(CAPS) for k in ("bounding", "effective", "permitted")},
                "oomScoreAdj": 0},
    "root": {"path": "rootfs"},
    "hostname": ID[:12],
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
        {"destination": "/etc/resolv.conf", "type": "bind", "source": f"{ROOT}/containers/{ID}/resolv.conf", "options": ["rbind", "rprivate"]},
        {"destination": "/etc/hostname", "type": "bind", "source": f"{ROOT}/containers/{ID}/hostname", "options": ["rbind", "rprivate"]},
        {"destination": "/etc/hosts", "type": "bind", "source": f"{ROOT}/containers/{ID}/hosts", "options": ["rbind", "rprivate"]},
    ],
    "hooks": {"prestart": [{"path": "/existing"}]},
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"},
                                  {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                                  {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                                  {"allow": True, "type": "c", "major": 136, "minor": -1, "access": "rwm"},
                                  {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"}],
                      "memory": {"disableOOMKiller": False}, "cpu": {"shares": 0}, "blockIO": {"weight": 0}},
        "cgroupsPath": f"/docker/{ID}",
        "namespaces": [{"type": "mount"}, {"type": "network"}, {"type": "uts"}, {"type": "pid"}, {"type": "ipc"}],
        "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]},
        "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}


def config(change=None, root: str = ROOT, cid: str = ID) -> dict:
    """A deep copy of BENIGN for Docker root `root` and container `cid`, passed through
    `change(c)` (which edits it in place) if given."""
    c = copy.deepcopy(BENIGN)
    for m in c["mounts"]:
        m["source"] = m["source"].replace(ROOT, str(root)).replace(ID, cid)
    c["linux"]["cgroupsPath"] = f"/docker/{cid}"
    if change is not None:
        change(c)
    return c
