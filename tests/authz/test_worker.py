"""authz.worker: the lean loop answers dockerd's plain requests exactly as the Flask routes
do, and leaves everything else to gunicorn and Flask on the same connection."""
from __future__ import annotations

import json
import socket
import tempfile
from pathlib import Path

import pytest

from dockguard.harness.plugin import PluginProcess
from authz.worker import lean_head

from .helpers import envelope, hc

REQ = b"POST /AuthZPlugin.AuthZReq HTTP/1.1"


@pytest.mark.parametrize("head, want", [
    (REQ + b"\r\nHost: \r\nContent-Length: 12", ("/AuthZPlugin.AuthZReq", 12, False)),
    (b"POST /AuthZPlugin.AuthZRes HTTP/1.1\r\ncontent-length:3\r\nConnection: close", ("/AuthZPlugin.AuthZRes", 3, True)),
    (b"POST /Plugin.Activate HTTP/1.1\r\nContent-Length: 0\r\nConnection: keep-alive", ("/Plugin.Activate", 0, False)),
])
def test_lean_head_reads_plain_requests(head, want):
    assert lean_head(head) == want


@pytest.mark.parametrize("head", [
    REQ,                                                              # no Content-Length
    REQ + b"\r\nTransfer-Encoding: chunked",
    REQ + b"\r\nContent-Length: 5\r\nTransfer-Encoding: chunked",
    REQ + b"\r\nContent-Length: 5\r\nContent-Length: 5",              # repeated
    REQ + b"\r\nContent-Length: +5", REQ + b"\r\nContent-Length: 5x", REQ + b"\r\nContent-Length: -1",
    REQ + b"\r\nContent-Length: 99999999999999",
    REQ + b"\r\nContent-Length : 5",                                  # space before the colon
    REQ + b"\r\nContent-Length: 5\r\n folded",
    REQ + b"\r\nContent-Length: 5\r\nno colon",
    REQ + b"\r\nContent-Length: 5\r\nExpect: 100-continue",
    REQ + b"\r\nContent-Length: 5\r\nConnection: upgrade",
    b"POST /AuthZPlugin.AuthZReq HTTP/1.0\r\nContent-Length: 5",
    b"GET /AuthZPlugin.AuthZReq HTTP/1.1\r\nContent-Length: 5",
    b"POST /AuthZPlugin.AuthZReq?x=1 HTTP/1.1\r\nContent-Length: 5",
    b"POST /AuthZPlugin.Nope HTTP/1.1\r\nContent-Length: 5",
])
def test_lean_head_leaves_the_rest_to_gunicorn(head):
    assert lean_head(head) is None


def _post(path: str, body: bytes, *, extra: bytes = b"", chunked: bool = False) -> bytes:
    if chunked:
        return (b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                % (path.encode(), extra, len(body), body))
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (path.encode(), len(body), extra, body)


def _read(f) -> tuple[int, dict, bytes]:
    status = f.readline()
    headers = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers.get("content-length", 0)))
    return int(status.split()[1]), headers, body


@pytest.fixture(scope="module")
def plugin():
    base = Path(tempfile.mkdtemp(prefix="dgw", dir="/tmp"))
    p = PluginProcess("w", docker_host=f"unix://{base}/nowhere.sock", plugin_dir=base,
                      log_path=base / "plugin.log").start()
    yield p
    p.stop()


def test_one_connection_mixing_lean_and_fallback_requests(plugin):
    allow = {"Allow": True, "Msg": "", "Err": ""}
    steps = [
        (_post("/Plugin.Activate", b""), 200, {"Implements": ["authz"]}),
        (_post("/AuthZPlugin.AuthZReq", envelope("GET", "/_ping")), 200, allow),
        (_post("/AuthZPlugin.AuthZReq", envelope("POST", "/containers/create", hc(Privileged=True))), 200, "[privileged]"),
        (_post("/AuthZPlugin.AuthZReq", b"not json"), 200, "[malformed-request]"),
        (_post("/AuthZPlugin.AuthZRes", b"garbage"), 200, allow),
        # chunked: gunicorn and Flask from here on, same answers
        (_post("/AuthZPlugin.AuthZReq", envelope("POST", "/containers/create", hc(Privileged=True)), chunked=True),
         200, "[privileged]"),
        (_post("/AuthZPlugin.AuthZReq", envelope("GET", "/_ping")), 200, allow),
        (_post("/AuthZPlugin.Nope", b"{}"), 404, {"Err": "dockguard: no such plugin endpoint"}),
    ]
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(str(plugin.socket))
        f = s.makefile("rb")
        for raw, status, want in steps:
            s.sendall(raw)
            got_status, headers, body = _read(f)
            assert got_status == status, (raw[:60], body)
            assert headers["content-type"] == "application/vnd.docker.plugins.v1+json"
            doc = json.loads(body)
            if isinstance(want, str):
                assert doc["Allow"] is False and want in doc["Msg"] and doc["Err"] == ""
            else:
                assert doc == want


def test_pipelined_requests_and_connection_close(plugin):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(str(plugin.socket))
        s.sendall(_post("/AuthZPlugin.AuthZReq", envelope("GET", "/_ping")) * 3
                  + _post("/AuthZPlugin.AuthZRes", b"{}", extra=b"Connection: close\r\n"))
        f = s.makefile("rb")
        for _ in range(4):
            status, _h, body = _read(f)
            assert status == 200 and json.loads(body)["Allow"] is True
        assert f.read() == b""  # closed after the Connection: close request


def test_body_split_across_writes(plugin):
    raw = _post("/AuthZPlugin.AuthZReq", envelope("POST", "/containers/create", hc(Privileged=True)))
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(str(plugin.socket))
        for i in range(0, len(raw), 7):
            s.sendall(raw[i:i + 7])
        status, _h, body = _read(s.makefile("rb"))
        assert status == 200 and "[privileged]" in json.loads(body)["Msg"]
