"""Sensitive host devices and device cgroup rules (guide: --device 把host的敏感目录或者设备映射到容器中)."""
from __future__ import annotations

from . import rule
from .mounts import norm

ACTIONS = ("container.create", "container.start", "container.update")
DEFAULT_SENSITIVE_DEVICES = ("/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg")
# (type, major, minor) of the memory devices, whatever node name they are given.
MEM_DEVICES = frozenset({("c", 1, 1), ("c", 1, 2), ("c", 1, 4), ("c", 1, 11)})

REASON = ("raw memory, I/O ports, the kernel log and disks handed to a container let it read "
          "or corrupt the host")


@rule("sensitive-device", actions=ACTIONS, reason=REASON,
      hint="pass only the specific, harmless device the workload needs (for example /dev/fuse), "
           "never memory devices, /dev/kmsg or disks")
def sensitive_device(spec, facts):
    out = []
    listed = facts.lists.sensitive_devices
    for d in spec.devices:
        host = d.host
        if not host:
            continue
        p = norm(host)
        real = facts.realpath(p) or p
        if p in listed or real in listed:
            out.append(f"--device {host}")
            continue
        if p == "/dev" or real == "/dev":
            out.append(f"--device {host} (every host device)")
            continue
        node = facts.device_node(real)
        if node is None:
            continue
        kind, major, minor = node
        if kind == "b":
            out.append(f"--device {host} (block device {major}:{minor})")
        elif (kind, major, minor) in MEM_DEVICES:
            out.append(f"--device {host} (memory device {major}:{minor})")
        elif kind == "d":
            out.append(f"--device {host} (a directory: every device under it)")
    return out


def parse_cgroup_rule(s: str) -> tuple[str, str, str, str] | None:
    """(type, major, minor, perms) of a stripped `TYPE MAJOR:MINOR PERMS`, or None: exactly
    what ^([acb])\\s+(\\*|\\d+):(\\*|\\d+)\\s+([rwm]{1,3})$ matches (str.split and \\s share
    Unicode's whitespace, str.isdecimal is \\d), without `re`: dockguard-runtime runs this
    rule on every container start and importing `re` would cost it ~8 ms of CPU."""
    parts = s.split()
    if len(parts) != 3 or parts[0] not in ("a", "c", "b"):
        return None
    numbers = parts[1].split(":")
    if len(numbers) != 2 or not all(n == "*" or n.isdecimal() for n in numbers):
        return None
    if not 1 <= len(parts[2]) <= 3 or any(ch not in "rwm" for ch in parts[2]):
        return None
    return parts[0], numbers[0], numbers[1], parts[2]


@rule("device-cgroup-rule", actions=ACTIONS, reason=REASON,
      hint="allow one device by type and major:minor (c 10:229 rwm), never a wildcard, "
           "a block device or the memory devices")
def device_cgroup_rule(spec, facts):
    out = []
    for r in spec.device_cgroup_rules:
        s = r.strip()
        if s == "a":
            out.append(f"--device-cgroup-rule '{r}' (all devices)")
            continue
        m = parse_cgroup_rule(s)
        if not m:
            out.append(f"--device-cgroup-rule '{r}' (not a rule dockguard can read)")
            continue
        kind, major, minor, _perms = m
        if kind == "a" or major == "*":
            out.append(f"--device-cgroup-rule '{r}' (all devices of a type)")
        elif kind == "b":
            out.append(f"--device-cgroup-rule '{r}' (block device)")
        elif minor == "*" and major == "1":
            out.append(f"--device-cgroup-rule '{r}' (memory devices)")
        elif minor != "*" and (kind, int(major), int(minor)) in MEM_DEVICES:
            out.append(f"--device-cgroup-rule '{r}' (memory device)")
    return out
