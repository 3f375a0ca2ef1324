"""Security options: seccomp, AppArmor, SELinux, and writable /proc and /sys
(guide: 不要禁用docker的seccomp特性, 不要配置/sys和/proc目录可写; CIS Docker 5.1-5.2, 5.21)."""
from __future__ import annotations

import posixpath

from dockguard.util import within

from . import rule

CONTAINER = ("container.create", "container.start", "service.create", "service.update")

# dockerd 20.10's defaults (oci/defaults.go); a list given without all of them unmasks /proc.
DEFAULT_MASKED = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                  "/sys/firmware")
DEFAULT_READONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def split_opt(opt: str) -> tuple[str, str]:
    """dockerd splits a security-opt on '=', and falls back to the old ':' form."""
    if "=" in opt:
        k, v = opt.split("=", 1)
    elif ":" in opt:
        k, v = opt.split(":", 1)
    else:
        k, v = opt, ""
    return k.strip().lower(), v.strip()


def _opts(spec, key):
    return [(o, v) for o in spec.security_opt for k, v in [split_opt(o)] if k == key]


@rule("seccomp-unconfined", actions=CONTAINER,
      reason="disabling seccomp opens every system call to the container and widens the "
             "kernel attack surface",
      hint="keep the default seccomp profile, or pass a profile that only adds the calls "
           "you need (--security-opt seccomp=profile.json)")
def seccomp_unconfined(spec, facts):
    return [f"--security-opt {o}" for o, v in _opts(spec, "seccomp") if v.lower() == "unconfined"]


@rule("seccomp-profile", actions=CONTAINER,
      reason="a custom seccomp profile that allows what the default profile forbids widens the "
             "kernel attack surface as much as disabling seccomp",
      hint="start from Docker's default profile and allow only the calls your workload needs, "
           "none of the ones it blocks")
def seccomp_profile(spec, facts):
    from .. import seccomp
    from .capabilities import normalise
    added = frozenset(normalise(c) for c in spec.cap_add)
    out = []
    for _o, v in _opts(spec, "seccomp"):
        if v.lower() in ("unconfined", "builtin", ""):
            continue
        out += [f"seccomp profile {p}" for p in seccomp.profile_problems(v, added)]
    return out


@rule("apparmor-unconfined", actions=CONTAINER,
      reason="running without AppArmor removes the mandatory access control that confines "
             "the container (beyond the guide: CIS Docker 5.1)",
      hint="keep the default docker-default profile, or load a custom one and name it "
           "(--security-opt apparmor=PROFILE)")
def apparmor_unconfined(spec, facts):
    return [f"--security-opt {o}" for o, v in _opts(spec, "apparmor") if v.lower() == "unconfined"]


SELINUX_UNCONFINED_TYPES = ("spc_t", "unconfined_t")


@rule("selinux-disabled", actions=CONTAINER,
      reason="disabling SELinux labelling lets the container reach host files its label would "
             "deny (beyond the guide: CIS Docker 5.2)",
      hint="keep labelling on; relabel volumes with :z or :Z instead of disabling it")
def selinux_disabled(spec, facts):
    # dockerd (parseSecurityOpt) also takes a bare `disable` as label=disable
    out = [f"--security-opt {o}" for o in spec.security_opt if o.strip().lower() == "disable"]
    for o, v in _opts(spec, "label"):
        low = v.lower().replace(" ", "")
        if low == "disable" or low.startswith("disable"):
            out.append(f"--security-opt {o}")
        elif low.startswith("type:") and low[5:] in SELINUX_UNCONFINED_TYPES:
            out.append(f"--security-opt {o}")
    if spec.selinux_disabled:
        out.append("service Privileges.SELinuxContext.Disable")
    return out


def _norm(p: str) -> str:
    n = posixpath.normpath("/" + p.strip())
    return "/" + n.lstrip("/")


@rule("writable-proc-sys", actions=CONTAINER,
      reason="/proc and /sys hold the kernel's parameters and device interfaces; a container "
             "that can write them can escape",
      hint="keep Docker's masked and read-only paths (no --security-opt systempaths=unconfined, "
           "no MaskedPaths/ReadonlyPaths overrides) and mount nothing onto /proc or /sys")
def writable_proc_sys(spec, facts):
    out = [f"--security-opt {o}" for o, v in _opts(spec, "systempaths") if v.lower() == "unconfined"]
    for given in spec.masked_paths:
        missing = [p for p in DEFAULT_MASKED if p not in given]
        if missing:
            out.append(f"MaskedPaths without {', '.join(missing)}")
    for given in spec.readonly_paths:
        missing = [p for p in DEFAULT_READONLY if p not in given]
        if missing:
            out.append(f"ReadonlyPaths without {', '.join(missing)}")
    for m in spec.mounts:
        t = _norm(m.target) if m.target else ""
        if t and (within(t, "/proc") or within(t, "/sys")):
            out.append(f"{m.kind} mount onto {m.target}")
    return out
