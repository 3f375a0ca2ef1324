"""Just enough rtnetlink to move a link between network namespaces, rename it and set it up.

Stdlib only (no `ip` binary: hooks run with an empty environment and must stay fast).
"""
from __future__ import annotations

import os
import socket
import struct

from dockguard.util import DockguardError

RTM_NEWLINK = 16
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
NLM_F_ACK = 4
IFLA_IFNAME = 3
IFLA_NET_NS_FD = 28
IFF_UP = 1
IFNAMSIZ = 16


class NetlinkError(DockguardError, OSError):
    pass


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def newlink_message(index: int, seq: int, *, name: str | None = None, netns_fd: int | None = None,
                    up: bool = False) -> bytes:
    """An RTM_NEWLINK request changing an existing link (pure, for testing)."""
    flags = IFF_UP if up else 0
    change = IFF_UP if up else 0
    body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)
    if netns_fd is not None:
        body += _attr(IFLA_NET_NS_FD, struct.pack("=I", netns_fd))
    if name is not None:
        body += _attr(IFLA_IFNAME, name.encode() + b"\0")
    header = struct.pack("=IHHII", 16 + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, 0)
    return header + body


def valid_ifname(name: str) -> bool:
    return (0 < len(name.encode()) < IFNAMSIZ and name not in (".", "..")
            and not any(c in name for c in "/: \t\n\0"))


def request(message: bytes, what: str) -> None:
    """Send one request in the current network namespace and wait for its ACK."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        sock.settimeout(5)
        sock.send(message)
        seq = struct.unpack_from("=I", message, 8)[0]
        while True:
            data = sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _flags, rseq, _pid = struct.unpack_from("=IHHII", data, offset)
                if kind == NLMSG_ERROR and rseq == seq:
                    err = struct.unpack_from("=i", data, offset + 16)[0]
                    if err:
                        raise NetlinkError(f"{what}: {os.strerror(-err)}")
                    return
                offset += max((length + 3) & ~3, 16)


def set_link(index: int, what: str, **kwargs) -> None:
    request(newlink_message(index, os.getpid() & 0xFFFF or 1, **kwargs), what)
