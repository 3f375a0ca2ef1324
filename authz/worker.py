"""gunicorn's gevent worker with a lean loop for the calls dockerd makes on every API
request (AuthZReq, AuthZRes, and Plugin.Activate first on each connection).

Measured (bench/bench_authz.py): gunicorn's HTTP parser, its WSGI environ and Flask's
request/response objects cost more per call than the whole decision of a cheap read. So a
connection is read here first: a plain `POST /AuthZPlugin.AuthZReq|AuthZRes HTTP/1.1` (or
/Plugin.Activate) with
one decimal Content-Length (what Go's client sends) is answered directly by `app.answer`,
the same function the Flask routes call. Anything else — another path or method, chunked
or Expect, a header we do not parse plainly, HTTP/1.0 — goes to gunicorn and Flask with the
bytes already read put back in front, for the rest of that connection.

Everything else (greenlet per connection, nested lookups, SIGHUP, heartbeat, graceful
stop) is gunicorn's gevent worker unchanged.
"""
from __future__ import annotations

import gevent
from gunicorn.workers.ggevent import GeventWorker

from .app import _ACTIVATE, REQ, RES, answer
from .engine import MAX_BODY

_MAX_HEAD = 64 * 1024
_MAX_ENVELOPE = MAX_BODY * 2  # the Flask app's MAX_CONTENT_LENGTH: a larger one goes there (413)
ACTIVATE = "/Plugin.Activate"
_LINES = {b"POST " + e.encode() + b" HTTP/1.1": e for e in (REQ, RES, ACTIVATE)}
_ACTIVATED = _ACTIVATE.encode()
_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.plugins.v1+json\r\nContent-Length: %d\r\n"


def lean_head(head: bytes) -> tuple[str, int, bool] | None:
    """(endpoint, content length, close after) for a request head the lean loop answers;
    None for anything it leaves to gunicorn."""
    lines = head.split(b"\r\n")
    endpoint = _LINES.get(lines[0])
    if endpoint is None:
        return None
    length = None
    close = False
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name[-1:] in (b" ", b"\t") or line[:1] in (b" ", b"\t"):
            return None  # malformed or folded: gunicorn's parser says why
        name = name.lower()
        value = value.strip(b" \t")
        if name == b"content-length":
            if length is not None or not value.isdigit() or len(value) > 12:
                return None
            length = int(value)
        elif name in (b"transfer-encoding", b"expect", b"upgrade"):
            return None
        elif name == b"connection":
            tokens = {t.strip().lower() for t in value.split(b",")}
            if b"close" in tokens:
                close = True
            elif tokens - {b"keep-alive", b""}:
                return None
    if length is None or length > _MAX_ENVELOPE:
        return None
    return endpoint, length, close


class _Prefixed:
    """The client socket with bytes already read put back in front (for gunicorn's parser)."""

    def __init__(self, sock, data: bytes):
        self._sock = sock
        self._data = data

    def recv(self, n: int, *flags) -> bytes:
        if self._data:
            out, self._data = self._data[:n], self._data[n:]
            return out
        return self._sock.recv(n, *flags)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class PluginWorker(GeventWorker):
    def handle(self, listener, client, addr):
        client.setblocking(1)
        live = self.wsgi.extensions.get("dockguard") if hasattr(self.wsgi, "extensions") else None
        if live is None:
            return super().handle(listener, client, addr)
        buf = b""
        keepalive = self.cfg.keepalive or None
        try:
            while self.alive:
                end = buf.find(b"\r\n\r\n")
                while end < 0:
                    if len(buf) > _MAX_HEAD:
                        break
                    chunk = None
                    with gevent.Timeout(keepalive, False):
                        chunk = client.recv(65536)
                    if not chunk:
                        return  # closed, or idle past keep-alive
                    buf += chunk
                    end = buf.find(b"\r\n\r\n")
                parsed = lean_head(buf[:end]) if end >= 0 else None
                if parsed is None:
                    return super().handle(listener, _Prefixed(client, buf), addr)
                endpoint, length, close = parsed
                need = end + 4 + length
                while len(buf) < need:
                    chunk = None
                    with gevent.Timeout(keepalive, False):
                        chunk = client.recv(max(65536, need - len(buf)))
                    if not chunk:
                        return  # the body never came: nothing answered, dockerd denies
                    buf += chunk
                body = _ACTIVATED if endpoint == ACTIVATE else answer(live, endpoint, buf[end + 4:need])
                buf = buf[need:]
                client.sendall(_HEAD % len(body) + (b"Connection: close\r\n\r\n" if close else b"\r\n") + body)
                if close:
                    return
        except OSError:
            return  # the peer went away
        finally:
            try:
                client.close()
            except OSError:
                pass
