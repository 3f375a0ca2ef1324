"""Dangerous capabilities, in any spelling (guide: 安全特性解读 2-17; CIS Docker 5.3)."""
from __future__ import annotations

from . import rule

# The guide's list, in kernel spelling without the CAP_ prefix.
GUIDE = ("SYS_MODULE", "SYS_ADMIN", "NET_ADMIN", "DAC_READ_SEARCH", "SYS_RAWIO", "SYS_PTRACE",
         "AUDIT_CONTROL", "BLOCK_SUSPEND", "WAKE_ALARM", "IPC_LOCK", "SYSLOG", "SYS_NICE",
         "SYS_RESOURCE", "SYS_TIME")
# Beyond the guide (CIS Docker Benchmark 5.3): capabilities that break the same isolation.
CIS = ("MAC_ADMIN", "MAC_OVERRIDE", "SYS_BOOT", "SYS_PACCT", "SYS_TTY_CONFIG",
       "LINUX_IMMUTABLE", "BPF", "PERFMON", "CHECKPOINT_RESTORE", "AUDIT_READ", "NET_BROADCAST")
DEFAULT_DANGEROUS = frozenset(GUIDE + CIS)


def normalise(cap: str) -> str:
    c = cap.strip().upper()
    return c[4:] if c.startswith("CAP_") else c


@rule("dangerous-capability",
      actions=("container.create", "container.start", "service.create", "service.update"),
      reason="these capabilities let a container escape or attack the host kernel "
             "(load modules, mount, sniff the network, read any file by handle, ...)",
      hint="add only a harmless capability the workload needs, or run the tool on the host; "
           "never --cap-add ALL")
def dangerous_capability(spec, facts):
    dangerous = facts.lists.dangerous_capabilities
    asked = list(spec.cap_add) + list(spec.capabilities or ())
    out = []
    for cap in asked:
        c = normalise(cap)
        if c == "ALL" or c in dangerous:
            out.append(f"capability {cap!r}")
    return out
