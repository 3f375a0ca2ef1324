#!/usr/bin/env python3
"""The floor of any authz plugin: a bare asyncio HTTP/1.1 server on a unix socket that
allows everything, with no framework and no WSGI. bench/bench_authz.py and
bench/load_authz.py measure dockguard's per-call cost against it.

    python bench/noop_async.py /path/to/name.sock
"""
from __future__ import annotations

import asyncio
import os
import sys

_ACTIVATE = b'{"Implements": ["authz"]}'
_ALLOW = b'{"Allow": true, "Msg": "", "Err": ""}'


def _reply(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.plugins.v1+json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


_R_ACTIVATE = _reply(_ACTIVATE)
_R_ALLOW = _reply(_ALLOW)


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            writer.write(_R_ACTIVATE if b"/Plugin.Activate" in head.split(b"\r\n", 1)[0] else _R_ALLOW)
            if b"\r\nconnection: close" in head.lower():
                await writer.drain()
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)
    server = await asyncio.start_unix_server(_serve, path, limit=16 * 1024 * 1024, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
