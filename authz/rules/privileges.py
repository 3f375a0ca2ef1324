"""Privileged containers and execs, and host namespaces (guide: 避免使用可能会对host造成影响的选项)."""
from __future__ import annotations

from . import rule

CONTAINER = ("container.create", "container.start")


@rule("privileged", actions=CONTAINER + ("exec.create",),
      reason="--privileged gives the container every capability and lets it mount and rewrite "
             "/proc and /sys, which can affect the host",
      hint="drop --privileged; add only the capability or device the workload needs "
           "(--cap-add X, --device /dev/X)")
def privileged(spec, facts):
    if spec.privileged:
        return ["privileged exec" if facts.request.action == "exec.create" else "--privileged"]


@rule("host-namespace", actions=CONTAINER + ("service.create", "service.update", "build"),
      reason="sharing a host namespace removes the isolation between container and host "
             "(with --pid host a container can see and kill host processes)",
      hint="leave --pid/--ipc/--net/--uts/--userns/--cgroupns at their defaults, or share "
           "with another container (--net container:NAME) instead of the host")
def host_namespace(spec, facts):
    if facts.request.action == "build":
        mode = facts.request.q("networkmode").strip().lower()
        return ["docker build --network host"] if mode == "host" else None
    if spec is None:
        return None
    out = [f"--{kind} {mode}" for kind, modes in spec.namespaces.items()
           for mode in modes if mode.strip().lower() == "host"]
    out += [f"service network {n}" for n in spec.networks if n.strip().lower() == "host"]
    out += _inherited_host_namespaces(spec, facts)
    return out


# The HostConfig field each joinable namespace kind lives in.
_FIELDS = {"pid": "PidMode", "ipc": "IpcMode", "net": "NetworkMode"}


def _inherited_host_namespaces(spec, ctx) -> list[str]:
    """`--net container:X` joins X's namespace: if X runs in the host's (it was made before
    dockguard, or under another policy), joining it is joining the host's."""
    out = []
    for kind, modes in spec.namespaces.items():
        for mode in modes:
            m = mode.strip()
            if kind not in _FIELDS or not m.lower().startswith("container:"):
                continue
            ref = m.split(":", 1)[1]
            info = ctx.container(ref) if ref else None
            theirs = ((info or {}).get("HostConfig") or {}).get(_FIELDS[kind]) or ""
            if theirs.strip().lower() == "host":
                out.append(f"--{kind} {m} (that container uses the host's {kind} namespace)")
    return out
