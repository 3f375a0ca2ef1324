"""Sensitive host paths bound into containers, in every form
(guide: 不要把host上的敏感目录或者设备映射到容器中; 容器存储卷 for the file-bind caveat)."""
from __future__ import annotations

import posixpath

from . import rule

CONTAINER = ("container.create", "container.start", "service.create", "service.update")

DEFAULT_SENSITIVE = ("/", "/etc", "/boot", "/dev", "/proc", "/sys", "/usr", "/bin", "/sbin",
                     "/lib", "/lib32", "/lib64", "/root", "/var/lib/docker", "/var/lib/containerd",
                     "/run/containerd", "/var/run/docker.sock", "/run/docker.sock", "/run/docker",
                     "/var/run/docker", "/etc/docker", "/root/.docker", "/var/lib/kubelet",
                     "/var/log")


def norm(p: str) -> str:
    """Lexical normalisation: //etc, /etc/, /etc/../etc -> /etc."""
    n = posixpath.normpath("/" + p.strip())
    return "/" + n.lstrip("/")


def _within(p: str, top: str) -> bool:
    return p == top or (top != "/" and p.startswith(top + "/"))


def sensitive_match(path: str, ctx) -> str | None:
    """The sensitive path `path` is, lies in, or would expose (as its ancestor); or None."""
    cands = {norm(path)}
    real = ctx.realpath(norm(path))
    if real:
        cands.add(real)
    for listed in (ctx.sensitive_paths, ctx.daemon_paths):  # the daemon is asked only if needed
        paths = listed()
        inside = [s for p in cands for s in paths if _within(p, s)]
        if inside:
            return max(inside, key=len)
        above = [s for p in cands for s in paths if p != "/" and _within(s, p)]
        if above:
            return min(above, key=len)
    return None


def host_sources(spec, ctx) -> list[tuple[str, str]]:
    """(how it was asked, host path) for every mount that reaches the host filesystem.

    A named volume made earlier (perhaps before dockguard ran) with `o=bind` is looked up:
    mounting it binds its device as surely as a -v /path does."""
    out = []
    for m in spec.mounts:
        if m.kind == "bind" and m.source:
            out.append((f"{m.origin} {m.source}:{m.target}", m.source))
        elif m.kind == "volume" and m.driver in ("", "local") and is_bind_opts(m.driver_opts):
            out.append((f"{m.origin} volume with o=bind device={m.driver_opts.get('device', '')}",
                        m.driver_opts.get("device", "")))
        elif m.kind == "volume" and m.source:
            # looked up even when options are given: dockerd ignores them for a volume that exists
            vol = ctx.volume(m.source)
            opts = (vol or {}).get("Options") or {}
            if vol and (vol.get("Driver") or "local") == "local" and is_bind_opts(opts):
                out.append((f"{m.origin} volume {m.source} (o=bind device={opts.get('device', '')})",
                            opts.get("device", "")))
    return out


def is_bind_opts(opts: dict[str, str]) -> bool:
    o = opts.get("o", "")
    return any(x.strip() in ("bind", "rbind") for x in o.split(","))


HINT = ("bind a dedicated directory (for example under /srv or a named volume) instead of a "
        "host system path; never the docker socket or Docker's root")
REASON = ("host system paths, devices and the docker socket inside a container let it read "
          "secrets, change the host or take over the daemon")


@rule("sensitive-mount", actions=CONTAINER, reason=REASON, hint=HINT)
def sensitive_mount(req, spec, ctx):
    out = []
    for how, src in host_sources(spec, ctx) + _inherited_binds(spec, ctx):
        s = sensitive_match(src, ctx) if src else "(empty device)"
        if s:
            out.append(f"{how} (sensitive: {s})")
    return out


def _inherited_binds(spec, ctx) -> list[tuple[str, str]]:
    """--volumes-from X mounts X's binds too: look X up and list its host sources."""
    out = []
    for entry in spec.volumes_from:
        ref = entry.split(":", 1)[0].strip()
        if not ref:
            continue
        info = ctx.container(ref) or {}
        for m in info.get("Mounts") or []:
            kind = m.get("Type") or ""
            if kind == "bind" and m.get("Source"):
                out.append((f"--volumes-from {entry} ({m['Source']}:{m.get('Destination', '')})",
                            m["Source"]))
            elif kind == "volume" and m.get("Name") and (m.get("Driver") or "local") == "local":
                opts = (ctx.volume(m["Name"]) or {}).get("Options") or {}
                if is_bind_opts(opts):
                    out.append((f"--volumes-from {entry} (volume {m['Name']}, o=bind "
                                f"device={opts.get('device', '')})", opts.get("device", "")))
    return out


@rule("sensitive-volume", actions=("volume.create",), reason=REASON, hint=HINT)
def sensitive_volume(req, spec, ctx):
    body = req.body()
    from .. import gojson as g
    driver = g.string(body, "driver")
    opts = g.string_map(body, "driveropts")
    if driver in ("", "local") and is_bind_opts(opts):
        dev = opts.get("device", "")
        s = sensitive_match(dev, ctx) if dev else "(empty device)"
        if s:
            return [f"volume with o=bind device={dev} (sensitive: {s})"]


@rule("file-bind-mount", actions=CONTAINER, default="audit",
      reason="a file bind-mounted from the host loses sync when vi or sed replace its inode",
      hint="bind the file's parent directory instead")
def file_bind_mount(req, spec, ctx):
    return [f"{how} is a file" for how, src in host_sources(spec, ctx)
            if src and ctx.is_regular_file(src)]
