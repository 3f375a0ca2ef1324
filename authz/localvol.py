"""What a `local` volume's options mount: they are mount(8) arguments, run by dockerd as root.

dockerd's `local` driver (moby volume/local, 20.10 to 26) keeps four options, keyed exactly:
`type`, `device`, `o` and `size` (an xfs quota, harmless). When `type` or `device` is set it
calls mount(2) with (device, the volume's _data directory, type, o) in the host's
namespaces; `o` is split on "," exactly and each item that is a known flag (`bind`,
`rbind`, `ro`, `remount`, ...) becomes a mount flag, the rest is the filesystem's data
(`size=` for tmpfs, `addr=` for nfs, `lowerdir=` for overlay...). So:

- an exact `bind`/`rbind` item makes it a bind mount of `device` whatever `type` says: a host
  path, judged by the sensitive-path rules (sensitive-mount, sensitive-volume);
- otherwise the kernel mounts `type`: `proc`, `sysfs`, `cgroup`, `debugfs`, `mqueue` show the
  host's own state, a block-device filesystem mounts a host disk, `overlay` stacks host
  directories. Only an allow-list passes: `tmpfs` (its device is only a name), network
  filesystems to servers the policy lists, and types the operator adds (their device may not
  be a host path and every path in their options is judged like a bind source).

Pure functions over plain data; the rules in authz/rules/mounts.py call them.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Mapping

KEYS = ("type", "device", "o", "size")
BUILTIN_TYPES = ("tmpfs",)
NETWORK_TYPES = frozenset({"nfs", "nfs4", "cifs", "smb3"})
# Filesystems whose every mount shows or changes the host kernel's own state: never allowed,
# not even when a policy lists them (turn the rule off for that).
KERNEL_STATE_TYPES = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs",
    "securityfs", "bpf", "configfs", "mqueue", "efivarfs", "pstore", "fusectl", "binfmt_misc",
    "hugetlbfs", "autofs", "rpc_pipefs", "nfsd", "selinuxfs", "nsfs", "rootfs"})
# moby/sys/mount's flag words: an `o` item that is one of these is a flag, not data.
FLAG_WORDS = frozenset({
    "defaults", "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async",
    "dirsync", "remount", "mand", "nomand", "atime", "noatime", "diratime", "nodiratime", "bind",
    "rbind", "unbindable", "runbindable", "private", "rprivate", "shared", "rshared", "slave",
    "rslave", "relatime", "norelatime", "strictatime", "nostrictatime"})
BIND_WORDS = ("bind", "rbind")
# data options naming the server a network filesystem talks to
SERVER_KEYS = frozenset({"addr", "ip", "mountaddr", "mounthost", "unc"})
# overlay's options whose values are ":"-separated host directories
OVERLAY_PATH_KEYS = frozenset({"lowerdir", "upperdir", "workdir", "datadir", "lowerdir+", "datadir+"})


@dataclass(frozen=True, slots=True)
class LocalOpts:
    """The options dockerd's local driver uses, read from a DriverOpts/Options map."""

    type: str = ""
    device: str = ""
    o: str = ""

    def items(self) -> list[str]:
        return self.o.split(",")

    @property
    def bind(self) -> bool:
        """A bind mount, exactly as moby/sys/mount reads `o` (the kernel then ignores type)."""
        return any(x in BIND_WORDS for x in self.items())

    @property
    def bind_like(self) -> bool:
        """`bind` in any spacing or case: judged as a bind too (stricter than dockerd)."""
        return any(x.strip().lower() in BIND_WORDS for x in self.items())

    @property
    def mounts(self) -> bool:
        """dockerd mounts something when type or device is set (localVolume.needsMount)."""
        return bool(self.type or self.device)

    def data(self) -> list[tuple[str, str]]:
        """The filesystem data options (what is not a flag word), as (key, value)."""
        out = []
        for item in self.items():
            if item in FLAG_WORDS or not item:
                continue
            key, _, value = item.partition("=")
            out.append((key.strip().lower(), value))
        return out


def read(opts: Mapping[str, str] | None) -> tuple[LocalOpts, list[str]]:
    """The local driver's options from a map, keys in any case (dockerd keys them exactly and
    refuses others; reading every case is only stricter). Two spellings of one key with
    different values are a problem: which one counts is not ours to guess."""
    found: dict[str, str] = {}
    problems = []
    for key, value in (opts or {}).items():
        k = key.lower()
        if k not in ("type", "device", "o"):
            continue
        value = value if isinstance(value, str) else str(value)
        if k in found and found[k] != value:
            problems.append(f"option {k!r} given twice with different values")
        found[k] = value
    return LocalOpts(found.get("type", ""), found.get("device", ""), found.get("o", "")), problems


def describe(lo: LocalOpts) -> str:
    parts = [f"type={lo.type}"] if lo.type else []
    if lo.device:
        parts.append(f"device={lo.device}")
    if lo.o:
        parts.append(f"o={_mask_password(lo.o)}")
    return " ".join(parts) or "no options"


def _mask_password(o: str) -> str:
    return ",".join(("password=********" if x.lower().startswith("password=") else x) for x in o.split(","))


def host_key(h: str) -> str:
    """A server name or address as compared: no brackets, lower case."""
    return h.strip().strip("[]").lower()


def valid_server(x: str) -> bool:
    h = x[1:-1] if x.startswith("[") and x.endswith("]") else x
    try:
        ipaddress.ip_address(h)
        return True
    except ValueError:
        return bool(re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", h))


def network_servers(lo: LocalOpts) -> tuple[list[str], list[str]]:
    """(servers named, problems) of a network filesystem: the device's host and every
    address option (nfs: `host:/export` and addr=; cifs: `//host/share` and addr=/ip=/unc=)."""
    problems = []
    servers = []
    dev = lo.device
    if lo.type in ("nfs", "nfs4"):
        m = re.fullmatch(r"(\[[^\]]*\]|[^:/\[\]]*):(.*)", dev)
        if not m:
            problems.append(f"device {dev!r} is not a remote export (host:/path)")
        else:
            servers.append(host_key(m.group(1)))
    else:
        host = _unc_host(dev)
        if host is None:
            problems.append(f"device {dev!r} is not a remote share (//host/share)")
        else:
            servers.append(host)
    for key, value in lo.data():
        if key in SERVER_KEYS:
            if key == "unc":
                host = _unc_host(value)
                if host is None:
                    problems.append(f"unc={value!r} is not a remote share (//host/share)")
                    continue
                servers.append(host)
            else:
                servers.append(host_key(value))
    servers = [s for s in servers if s]
    if not servers and not problems:
        problems.append("names no server")
    return servers, problems


def _unc_host(dev: str) -> str | None:
    m = re.fullmatch(r"(?://|\\\\)([^/\\]+)(?:[/\\].*)?", dev)
    return host_key(m.group(1)) if m else None


def option_paths(lo: LocalOpts) -> tuple[list[str], list[str]]:
    """(host paths, problems) named by a mount's data options: overlay's directory lists, and
    any value holding a "/". A relative path resolves against dockerd's working directory:
    a problem, not a guess."""
    paths, problems = [], []
    for key, value in lo.data():
        if key in OVERLAY_PATH_KEYS:
            parts = [p.replace("\\", "") for p in re.split(r"(?<!\\):", value)]
        elif "/" in value:
            parts = [value]
        else:
            continue
        for p in parts:
            if not p:
                continue
            if p.startswith("/"):
                paths.append(p)
            else:
                problems.append(f"{key}={value!r} names the relative path {p!r} "
                                "(resolved against dockerd's working directory)")
    return paths, problems


def judge(lo: LocalOpts, extra_types=frozenset(), servers=frozenset()) -> tuple[list[str], list[str]]:
    """(problems, host paths to judge as bind sources) of a non-bind mount of these options.

    A bind (`o=bind`) is none of this function's business: the caller judges its device as a
    host path. `extra_types` are the types a policy adds to tmpfs; `servers` the network
    servers it lists."""
    if not lo.mounts or lo.bind:
        return [], []
    what = describe(lo)
    t = lo.type
    if t in BUILTIN_TYPES:
        return [], []
    if t in NETWORK_TYPES:
        named, problems = network_servers(lo)
        listed = {host_key(s) for s in servers}
        unlisted = sorted({s for s in named if s not in listed})
        if unlisted:
            problems.append(f"server {', '.join(unlisted)} is not in the policy's volume_servers")
        return [f"{what}: {p}" for p in problems], []
    if t in extra_types and t not in KERNEL_STATE_TYPES:
        problems = []
        dev = lo.device
        if "/" in dev or "\\" in dev or dev in (".", ".."):
            problems.append(f"device {dev!r} is a host path")
        paths, more = option_paths(lo)
        return [f"{what}: {p}" for p in problems + more], paths
    kind = ("shows the host kernel's own state" if t in KERNEL_STATE_TYPES
            else "is not an allowed volume type")
    return [f"{what}: type {t or '(none)'!r} {kind}"], []


def validate_types(types) -> list[str]:
    """Policy errors for a volume_types list."""
    out = []
    for t in types:
        if t in KERNEL_STATE_TYPES:
            out.append(f"{t!r} shows the host kernel's own state and cannot be allowed")
        elif not re.fullmatch(r"[a-z0-9][a-z0-9._+-]*", t):
            out.append(f"{t!r} is not a filesystem type name")
        elif t in NETWORK_TYPES:
            out.append(f"{t!r} is allowed by listing its servers in volume_servers")
    return out
