"""Raw HTTP to a daemon's unix socket: any request-target, any body, as an attacker sends it."""
from __future__ import annotations

import json
import socket


def raw(sock_path, method: str, target: str, body: bytes | str | None = None,
        content_type: str | None = "application/json", timeout: float = 60.0,
        expect_continue: bool = False, headers: list[str] | None = None) -> tuple[int, str]:
    """One request; with `expect_continue` the body is sent only if the server asks for it
    (Go answers a handler that never reads the body without waiting for it)."""
    if isinstance(body, str):
        body = body.encode()
    head = [f"{method} {target} HTTP/1.1", "Host: docker", "Connection: close"] + list(headers or [])
    if body is not None:
        head.append(f"Content-Length: {len(body)}")
        if content_type:
            head.append(f"Content-Type: {content_type}")
        if expect_continue:
            head.append("Expect: 100-continue")
    data = ("\r\n".join(head) + "\r\n\r\n").encode()
    if not expect_continue:
        data += body or b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        try:
            s.sendall(data)
        except BrokenPipeError:
            pass  # dockerd may answer (and close) before reading a large body
        resp = b""
        if expect_continue:
            resp = s.recv(65536)
            if resp.startswith(b"HTTP/1.1 100"):
                s.sendall(body or b"")
                resp = resp.partition(b"\r\n\r\n")[2]
        while chunk := s.recv(65536):
            resp += chunk
    header, _, payload = resp.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    if b"Transfer-Encoding: chunked" in header:
        payload = _dechunk(payload)
    return status, payload.decode(errors="replace")


def _dechunk(b: bytes) -> bytes:
    out = b""
    while b:
        size_line, _, rest = b.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        b = rest[size + 2:]
    return out


def create(sock_path, body: dict | str, target: str = "/v1.41/containers/create") -> tuple[int, str]:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return raw(sock_path, "POST", target, text)
