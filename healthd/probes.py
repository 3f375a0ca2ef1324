"""The two host probes, tcp and http, from the host in the container's own network namespace
(healthd/netns.py makes the socket there): nothing needed inside the image, no published
port. A TCP probe to loopback is decided inside connect() itself, so it costs a few
syscalls and no task. Exec checks go through the exec API (healthd/execapi.py).

Every probe returns (exit_code, output): 0 = success, like the engine's probes; a timeout is
exit code -1 with the engine's wording.
"""
from __future__ import annotations

import asyncio
import errno
import os
import select
import socket

from .machine import EXIT_TIMEOUT, MAX_OUTPUT
from .netns import NetnsSockets


def timeout_output(timeout: float) -> str:
    return f"Health check exceeded timeout ({timeout:g}s)"


async def wait_connected(sock: socket.socket) -> int:
    """After EINPROGRESS: wait until writable, return SO_ERROR (0 = connected)."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    fd = sock.fileno()
    loop.add_writer(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        loop.remove_writer(fd)
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def tcp_start(sockets: NetnsSockets, nsfd: int, port: int) -> tuple[socket.socket | None, int]:
    """Begin a TCP probe synchronously. Loopback connects complete (or are refused) inside
    connect() itself, so the common case needs no task, no future and no wakeup:
    returns (None, errno) when decided, (sock, EINPROGRESS) when the caller must wait."""
    sock = sockets.create(nsfd)
    err = sock.connect_ex(("127.0.0.1", port))
    if err == errno.EINPROGRESS:
        # Linux answers EINPROGRESS even when the loopback handshake already completed in
        # this very syscall: look once, without waiting, before going asynchronous.
        p = select.poll()
        p.register(sock, select.POLLOUT)
        if not p.poll(0):
            return sock, err
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    sock.close()
    return None, err


def tcp_result(port: int, err: int) -> tuple[int, str]:
    if err:
        return 1, f"connect 127.0.0.1:{port}: {os.strerror(err)}"
    return 0, ""


async def tcp_finish(sock: socket.socket, port: int, timeout: float) -> tuple[int, str]:
    try:
        async with asyncio.timeout(timeout):
            err = await wait_connected(sock)
    except TimeoutError:
        return EXIT_TIMEOUT, timeout_output(timeout)
    finally:
        sock.close()
    return tcp_result(port, err)


async def http_probe(sockets: NetnsSockets, nsfd: int, port: int, path: str,
                     timeout: float) -> tuple[int, str]:
    """GET path; 2xx and 3xx succeed. Output: the status line (and why, on failure)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            sock = sockets.create(nsfd)
            try:
                err = sock.connect_ex(("127.0.0.1", port))
                if err == errno.EINPROGRESS:
                    err = await wait_connected(sock)
                if err:
                    return tcp_result(port, err)
                req = (f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n"
                       "User-Agent: dockguard-healthd\r\nConnection: close\r\n\r\n").encode()
                await loop.sock_sendall(sock, req)
                buf = b""
                while b"\n" not in buf and len(buf) < MAX_OUTPUT:
                    chunk = await loop.sock_recv(sock, 1024)
                    if not chunk:
                        break
                    buf += chunk
            finally:
                sock.close()
    except TimeoutError:
        return EXIT_TIMEOUT, timeout_output(timeout)
    except OSError as exc:
        return 1, f"http probe: {exc}"
    line = buf.split(b"\n", 1)[0].strip().decode("latin-1")
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return 1, f"not an HTTP response: {line[:200]!r}"
    code = int(parts[1])
    return (0 if 200 <= code < 400 else 1), line
