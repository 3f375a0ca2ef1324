"""Sensitive host paths bound into containers, in every form, and what `local` volumes mount
(guide: 不要把host上的敏感目录或者设备映射到容器中; 容器存储卷 for the file-bind caveat)."""
from __future__ import annotations

import posixpath

from dockguard.util import within

from . import rule

# gojson and localvol are imported where used: dockguard-runtime imports this module on every
# container start and never calls those paths (ipaddress, dataclasses and typing cost ~15 ms).

CONTAINER = ("container.create", "container.start", "service.create", "service.update")

# All of /run (and its /var/run, /var/lock aliases) and /var hold host state: dbus and
# systemd sockets, cron spools, shadow backups, package state. Operators carve out what
# they bind on purpose with [lists] allowed_paths.
DEFAULT_SENSITIVE = ("/", "/etc", "/boot", "/dev", "/proc", "/sys", "/usr", "/bin", "/sbin",
                     "/lib", "/lib32", "/lib64", "/libx32", "/root", "/run", "/var", "/var/run", "/var/lock",
                     "/swapfile", "/swap.img",  # swap files hold pages of every process's memory
                     "/var/lib/docker", "/var/lib/containerd", "/run/containerd",
                     "/var/run/docker.sock", "/run/docker.sock", "/run/docker", "/var/run/docker",
                     "/etc/docker", "/root/.docker", "/var/lib/kubelet", "/var/log")


def norm(p: str) -> str:
    """Lexical normalisation: //etc, /etc/, /etc/../etc -> /etc."""
    n = posixpath.normpath("/" + p.strip())
    return "/" + n.lstrip("/")


def _within(p: str, top: str) -> bool:
    """`/` in a list of sensitive paths names the root itself, not everything below it."""
    return p == top or (top != "/" and within(p, top))


def _deepest(p: str, paths) -> str | None:
    inside = [s for s in paths if _within(p, s)]
    return max(inside, key=len) if inside else None


def sensitive_match(path: str, ctx) -> str | None:
    """The sensitive path `path` is, lies in, or would expose (as its ancestor); or None.

    Asked in tiers, so the daemon is asked only when needed: the policy's list and the
    standard sockets (an `allowed_paths` entry deeper than the sensitive path a candidate
    lies in carves it out), then the daemon's root, then its exec-root and containerd's
    directories (never carved out). A path that holds a sensitive path is always refused."""
    cands = {norm(path)}
    real = ctx.realpath(norm(path))
    if real:
        cands.add(real)
    allowed = ctx.lists.allowed_paths
    for listed, carve in ((ctx.sensitive_paths, allowed), (ctx.daemon_paths, ()), (ctx.daemon_dirs, ())):
        paths = listed()
        inside = []
        for p in cands:
            s = _deepest(p, paths)
            a = _deepest(p, carve)
            if s and not (a and len(a) > len(s)):
                inside.append(s)
        if inside:
            return max(inside, key=len)
        above = [s for p in cands for s in paths if p != "/" and _within(s, p)]
        if above:
            return min(above, key=len)
    return None


def judge_source(src: str, ctx) -> str | None:
    """Why a host path may not be mounted, in parentheses; None if it may."""
    if not src:
        return "(empty device)"
    if not src.strip().startswith("/"):
        return f"(relative path {src!r}: resolved against dockerd's working directory)"
    s = sensitive_match(src, ctx)
    return f"(sensitive: {s})" if s else None


def local_volumes(spec, ctx) -> list[tuple[str, dict]]:
    """(how it was asked, options) of every `local` volume a container would mount.

    Options given inline are used if the volume is new; a named volume that exists (made
    earlier, perhaps before dockguard ran or with a rule off) is looked up, since dockerd
    then mounts it with its stored options and ignores the inline ones. --volumes-from X
    mounts X's volumes: looked up too. A driver left empty may be HostConfig.VolumeDriver's:
    judged as local, which is only stricter."""
    out = []
    for m in spec.mounts:
        if m.kind != "volume":
            continue
        if m.driver in ("", "local") and m.driver_opts:
            out.append((f"{m.origin} volume" + (f" {m.source}" if m.source else ""), m.driver_opts))
        if m.source:
            out += _stored(f"{m.origin} volume {m.source}", m.source, ctx)
    for entry in spec.volumes_from:
        ref = entry.split(":", 1)[0].strip()
        if not ref:
            continue
        for mt in (ctx.container(ref) or {}).get("Mounts") or []:
            if mt.get("Type") == "volume" and mt.get("Name") and (mt.get("Driver") or "local") == "local":
                out += _stored(f"--volumes-from {entry} (volume {mt['Name']})", mt["Name"], ctx)
    return out


def _stored(how: str, name: str, ctx) -> list[tuple[str, dict]]:
    vol = ctx.volume(name)
    if vol and (vol.get("Driver") or "local") == "local":
        return [(how, vol.get("Options") or {})]
    return []


def _bind_device(opts) -> str | None:
    from .. import localvol
    lo, _ = localvol.read(opts)
    return lo.device if lo.bind_like else None


def host_sources(spec, ctx) -> list[tuple[str, str]]:
    """(how it was asked, host path) for every mount that reaches the host filesystem: binds,
    and `local` volumes with `o=bind` (their device is bound as surely as a -v /path)."""
    out = [(f"{m.origin} {m.source}:{m.target}", m.source) for m in spec.mounts
           if m.kind == "bind" and m.source]
    for how, opts in local_volumes(spec, ctx):
        dev = _bind_device(opts)
        if dev is not None:
            out.append((f"{how} (o=bind device={dev})", dev))
    return out


HINT = ("bind a dedicated directory (for example under /srv or a named volume) instead of a "
        "host system path; never the docker socket or Docker's root (an operator may list "
        "a directory under /var or /run in the policy's allowed_paths)")
REASON = ("host system paths, devices and the docker socket inside a container let it read "
          "secrets, change the host or take over the daemon")


@rule("sensitive-mount", actions=CONTAINER, reason=REASON, hint=HINT)
def sensitive_mount(spec, facts):
    out = []
    for how, src in host_sources(spec, facts) + _inherited_binds(spec, facts):
        why = judge_source(src, facts)
        if why:
            out.append(f"{how} {why}")
    return out


def _inherited_binds(spec, ctx) -> list[tuple[str, str]]:
    """--volumes-from X mounts X's binds too: look X up and list its bind sources (its
    volumes are in local_volumes)."""
    out = []
    for entry in spec.volumes_from:
        ref = entry.split(":", 1)[0].strip()
        if not ref:
            continue
        for m in (ctx.container(ref) or {}).get("Mounts") or []:
            if m.get("Type") == "bind" and m.get("Source"):
                out.append((f"--volumes-from {entry} ({m['Source']}:{m.get('Destination', '')})",
                            m["Source"]))
    return out


def _volume_create(req) -> tuple[str, str, dict[str, str]]:
    from .. import gojson as g
    body = req.body()
    name = g.string(body, "name") or "(unnamed)"
    return name, g.string(body, "driver"), g.string_map(body, "driveropts")


@rule("sensitive-volume", actions=("volume.create",), reason=REASON, hint=HINT)
def sensitive_volume(spec, facts):
    name, driver, opts = _volume_create(facts.request)
    dev = _bind_device(opts) if driver in ("", "local") else None
    if dev is not None:
        why = judge_source(dev, facts)
        if why:
            return [f"volume {name} (o=bind device={dev}) {why}"]


@rule("volume-mount-type", actions=CONTAINER + ("volume.create",),
      reason=("a `local` volume is a mount(2) dockerd runs as root in the host's namespaces: "
              "proc, sysfs, cgroup, debugfs, a host block device or an overlay of host "
              "directories hands the host to the container"),
      hint=("use a plain named volume, a tmpfs volume (--opt type=tmpfs --opt device=tmpfs), "
            "a bind of a dedicated directory, or nfs/cifs to a server listed in the policy's "
            "volume_servers"))
def volume_mount_type(spec, facts):
    from .. import localvol
    if facts.request.action == "volume.create":
        name, driver, opts = _volume_create(facts.request)
        vols = [(f"volume {name}", opts)] if driver in ("", "local") else []
    else:
        vols = local_volumes(spec, facts)
    out = []
    for how, opts in vols:
        lo, problems = localvol.read(opts)
        bad, paths = localvol.judge(lo, facts.lists.volume_types, facts.lists.volume_servers)
        out += [f"{how}: {p}" for p in problems + bad]
        for p in paths:
            why = judge_source(p, facts)
            if why:
                out.append(f"{how}: {localvol.describe(lo)}: option path {p} {why}")
    return out


@rule("file-bind-mount", actions=CONTAINER,
      reason="a file bind-mounted from the host loses sync when vi or sed replace its inode",
      hint="bind the file's parent directory instead")
def file_bind_mount(spec, facts):
    return [f"{how} is a file" for how, src in host_sources(spec, facts)
            if src and facts.is_regular_file(src)]
