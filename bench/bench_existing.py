#!/usr/bin/env python3
"""What judging an existing container costs a start (authz/existing.py).

A start now costs the plugin one inspect of the container: the plugin asks dockerd
(GET /containers/X/json), which asks the plugin about that GET before answering.
Measured two ways on one guarded private daemon, interleaved round-robin:

1. the plugin's decision alone: AuthZReq for `POST /containers/X/start` (judged: one inspect)
   against the same for `POST /containers/X/stop` (lifecycle too, never looked up), each
   followed by its AuthZRes, straight to the plugin's socket;
2. a whole `POST /containers/X/start` + stop through dockerd, on a daemon guarded by the
   default policy against one guarded with every rule the stage applies turned off.

Prints medians and the difference; never asserts wall-clock.
Run as root:  .venv/bin/python bench/bench_existing.py [--rounds 400] [--starts 30]
"""
from __future__ import annotations

import argparse
import base64
import json
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from authz import existing, policy as policies  # noqa: E402
from dockguard.harness.plugin import PluginProcess  # noqa: E402
from dockguard.harness.daemon import PrivateDaemon  # noqa: E402


def post(sock: Path, path: str, body: bytes) -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(str(sock))
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


def envelope(method: str, uri: str, status: int | None = None) -> bytes:
    env = {"User": "", "RequestMethod": method, "RequestUri": uri,
           "RequestHeaders": {"Content-Length": "0"}}
    if status is not None:
        env["ResponseStatusCode"] = status
    return json.dumps(env).encode()


def decision_ms(plugin_sock: Path, uri: str) -> float:
    t0 = time.perf_counter()
    status, body = post(plugin_sock, "/AuthZPlugin.AuthZReq", envelope("POST", uri))
    dt = time.perf_counter() - t0
    assert status == 200 and json.loads(body)["Allow"], body
    post(plugin_sock, "/AuthZPlugin.AuthZRes", envelope("POST", uri, 204))  # closes the in-flight slot
    return dt * 1000


def guarded(tag: str, policy: str | None):
    base = Path(tempfile.mkdtemp(prefix=f"dgbe{tag}", dir="/tmp"))
    name = f"dgbench-{base.name}"
    p = PluginProcess(name, policy=policy, log_path=base / "plugin.log", plugin_dir=PrivateDaemon(base).plugin_dir)
    d = PrivateDaemon(base, authz_plugins=[name])
    p.docker_host = d.host
    p.start()
    d.start()
    d.import_busybox()
    r = d.docker("create", "--name", "bench", "--stop-timeout", "0", "busybox", "sleep", "600")
    assert r.returncode == 0, r.stderr
    return d, p


def start_stop_ms(d: PrivateDaemon) -> float:
    t0 = time.perf_counter()
    status, body = post(d.socket, "/v1.41/containers/bench/start", b"")
    dt = time.perf_counter() - t0
    assert status == 204, body
    status, body = post(d.socket, "/v1.41/containers/bench/stop?t=0", b"")
    assert status == 204, body
    return dt * 1000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=400)
    ap.add_argument("--starts", type=int, default=30)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dgbep", dir="/tmp"))
    off = tmp / "off.toml"
    ids = [r.id for r, _ in existing.rules_for_existing(policies.load())]
    off.write_text("[rules]\n" + "".join(f'{i} = "off"\n' for i in ids))
    made = []
    try:
        on_d, on_p = guarded("on", None)
        made.append((on_d, on_p))
        off_d, off_p = guarded("off", str(off))
        made.append((off_d, off_p))

        judged, plain = [], []
        for _ in range(args.rounds):
            judged.append(decision_ms(on_p.socket, "/v1.41/containers/bench/start"))
            plain.append(decision_ms(on_p.socket, "/v1.41/containers/bench/stop"))
        mj, mp = statistics.median(judged), statistics.median(plain)
        print(f"plugin decision, {args.rounds} rounds (medians):")
        print(f"  start (one inspect)   {mj:7.2f} ms")
        print(f"  stop  (no lookup)     {mp:7.2f} ms")
        print(f"  the lookup costs      {mj - mp:+7.2f} ms per start (ratio {mj / mp:.2f})")

        with_stage, without = [], []
        for _ in range(args.starts):
            with_stage.append(start_stop_ms(on_d))
            without.append(start_stop_ms(off_d))
        mw, mo = statistics.median(with_stage), statistics.median(without)
        print(f"docker start through dockerd, {args.starts} rounds (medians):")
        print(f"  stage on              {mw:7.1f} ms")
        print(f"  stage's rules off     {mo:7.1f} ms")
        print(f"  difference            {mw - mo:+7.1f} ms (ratio {mw / mo:.3f})")
    finally:
        for d, p in reversed(made):
            d.stop()
            p.stop()
            shutil.rmtree(d.base, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
