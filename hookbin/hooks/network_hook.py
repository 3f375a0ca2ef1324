"""`network-hook HOSTIF NAME`: give a container a host network interface.

prestart: move HOSTIF into the container's network namespace, rename it NAME, set it up.
If the rename or up fails, the interface is moved back to the host (nothing lost).
poststop (status "stopped"): nothing to do. When the container's network namespace goes
away the kernel returns physical interfaces to the host namespace and destroys virtual
ones (veth, dummy) with it: that is by design, and documented in docs/hookspec.md.

It runs as root with arguments from a hook-spec, so it enforces the policy itself: HOSTIF
must be listed in the policy's network_interfaces (none by default), and is never the
loopback or an interface carrying one of the host's default routes, judged by the
interface's own name (an altname is resolved first) when it runs.
"""
from __future__ import annotations

import os
import socket
import sys

from hookbin import netlink, oci
from hookbin import policy as hookpolicy

USAGE = "usage: network-hook HOSTIF NAME"


def parse_args(argv: list[str]) -> tuple[str, str]:
    if len(argv) != 2:
        raise ValueError(f"expected 2 arguments, got {len(argv)}")
    for name in argv:
        if not netlink.valid_ifname(name):
            raise ValueError(f"{name!r} is not a valid interface name (1-15 bytes, no '/', ':' or spaces)")
    return argv[0], argv[1]


def parse_default_routes(route: str, ipv6_route: str) -> frozenset[str]:
    """Interfaces holding a default route, from /proc/net/route and /proc/net/ipv6_route (pure)."""
    out = set()
    for line in route.splitlines()[1:]:
        f = line.split()
        if len(f) >= 8 and f[1] == "00000000" and f[7] == "00000000":
            out.add(f[0])
    for line in ipv6_route.splitlines():
        f = line.split()
        if len(f) >= 10 and f[0] == "0" * 32 and f[1] == "00" and f[9] != "lo":
            out.add(f[9])
    return frozenset(out)


def default_route_ifaces() -> frozenset[str]:
    texts = []
    for path in ("/proc/net/route", "/proc/net/ipv6_route"):
        try:
            with open(path) as f:
                texts.append(f.read())
        except OSError:
            texts.append("")
    return parse_default_routes(*texts)


def policy_problems(opts: tuple[str, str], policy, facts: dict) -> list[str]:
    """What the policy refuses in these arguments (pure). facts: default_route_ifaces."""
    hostif = opts[0]
    if hostif == "lo":
        return ["the loopback interface is never moved into a container"]
    if hostif in facts.get("default_route_ifaces", ()):
        return [f"{hostif} carries a default route of the host: never moved into a container"]
    if hostif not in policy.network_interfaces:
        listed = ", ".join(sorted(policy.network_interfaces)) or "none"
        return [f"{hostif} is not an interface the policy lets network-hook move "
                f"(policy [hookspec] network_interfaces: {listed})"]
    return []


def is_loopback(name: str) -> bool:
    try:
        with open(f"/sys/class/net/{name}/flags") as f:
            return bool(int(f.read().strip(), 16) & 0x8)  # IFF_LOOPBACK
    except (OSError, ValueError):
        return name == "lo"


def check_interface(hostif: str, name: str, policy) -> None:
    """At run time, on the interface as the kernel names it (an altname resolves to it)."""
    try:
        index = socket.if_nametoindex(hostif)
        real = socket.if_indextoname(index)
    except OSError:
        raise oci.OciError(f"host interface {hostif!r} not found") from None
    facts = {"default_route_ifaces": default_route_ifaces()}
    problems = policy_problems((hostif, name), policy, facts)
    if real != hostif:
        problems += policy_problems((real, name), policy, facts)
    if is_loopback(real) and not problems:
        problems.append("the loopback interface is never moved into a container")
    if problems:
        raise ValueError("; ".join(problems))


def move_into(pid: int, hostif: str, name: str) -> None:
    try:
        index = socket.if_nametoindex(hostif)
    except OSError:
        raise oci.OciError(f"host interface {hostif!r} not found") from None
    host_ns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target_ns = oci.open_ns(pid, "net")
    netlink.set_link(index, f"move {hostif} into the container's network namespace", netns_fd=target_ns)
    oci.setns(target_ns, oci.CLONE_NEWNET, f"network namespace of pid {pid}")
    try:
        inner = socket.if_nametoindex(hostif)
        netlink.set_link(inner, f"rename {hostif} to {name} and set it up", name=name, up=True)
    except OSError as exc:
        try:
            netlink.set_link(socket.if_nametoindex(hostif), "move back", netns_fd=host_ns)
        except OSError:
            pass
        raise oci.OciError(str(exc)) from None


def main(argv: list[str] | None = None, policy_path: str | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        hostif, name = parse_args(argv)
        policy = hookpolicy.load(policy_path)
        state = oci.read_state(sys.stdin)
        if state["status"] == "stopped":
            return 0
        if state["pid"] <= 0:
            raise oci.OciError(f"no container pid in the OCI state (status {state['status']})")
        check_interface(hostif, name, policy)
        move_into(state["pid"], hostif, name)
    except ValueError as exc:
        print(f"network-hook: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    except (oci.OciError, OSError) as exc:
        print(f"network-hook: {exc}", file=sys.stderr)
        return 1
    return 0
