"""`network-hook HOSTIF NAME`: give a container a host network interface.

prestart: move HOSTIF into the container's network namespace, rename it NAME, set it up.
If the rename or up fails, the interface is moved back to the host (nothing lost).
poststop (status "stopped"): nothing to do. When the container's network namespace goes
away the kernel returns physical interfaces to the host namespace and destroys virtual
ones (veth, dummy) with it: that is by design, and documented in docs/hookspec.md.
"""
from __future__ import annotations

import os
import socket
import sys

from hookbin import netlink, oci

USAGE = "usage: network-hook HOSTIF NAME"


def parse_args(argv: list[str]) -> tuple[str, str]:
    if len(argv) != 2:
        raise ValueError(f"expected 2 arguments, got {len(argv)}")
    for name in argv:
        if not netlink.valid_ifname(name):
            raise ValueError(f"{name!r} is not a valid interface name (1-15 bytes, no '/', ':' or spaces)")
    return argv[0], argv[1]


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        hostif, name = parse_args(argv)
        state = oci.read_state(sys.stdin)
        if state["status"] == "stopped":
            return 0
        if state["pid"] <= 0:
            raise oci.OciError(f"no container pid in the OCI state (status {state['status']})")
        move_into(state["pid"], hostif, name)
    except ValueError as exc:
        print(f"network-hook: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    except (oci.OciError, OSError) as exc:
        print(f"network-hook: {exc}", file=sys.stderr)
        return 1
    return 0
