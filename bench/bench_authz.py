#!/usr/bin/env python3
"""Latency of a cheap API call (GET /containers/json) on private daemons side by side:
no plugin, the floor of any plugin (bench/noop_async.py: bare asyncio HTTP, no framework),
a no-op WSGI plugin under gunicorn (bench/noop_plugin.py), and dockguard — for each gunicorn
worker class asked for. Requests are interleaved round-robin over kept-alive connections,
so every daemon sees the same machine load.

Prints medians, p90s and the overhead ratios (dockguard - none) / (no-op - none); the
target is (dockguard - none) / (asyncio no-op - none) <= 1.6 at the median.
Run as root:  .venv/bin/python bench/bench_authz.py [--rounds 2000] [--workers gevent,gthread,sync]
"""
from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dockguard.harness.plugin import PluginProcess  # noqa: E402
from dockguard.harness.daemon import PrivateDaemon  # noqa: E402

REQ = b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n"


class KeepAlive:
    def __init__(self, path: Path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(str(path))
        self.buf = b""

    def get(self) -> float:
        t0 = time.perf_counter()
        self.s.sendall(REQ)
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if sep:
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if len(rest) >= length:
                    if not head.startswith(b"HTTP/1.1 200"):
                        raise RuntimeError(head.decode(errors="replace"))
                    self.buf = rest[length:]
                    return time.perf_counter() - t0
            self.buf += self.s.recv(65536)


def start(kind: str, worker: str, tag: str):
    base = Path(tempfile.mkdtemp(prefix=f"dgb{tag}", dir="/tmp"))
    plugin = None
    names = []
    if kind != "none":
        name = f"dgbench-{base.name}"
        names = [name]
        argv = None
        plugin_dir = PrivateDaemon(base).plugin_dir    # the daemon's own, never the host's
        if kind == "asyncio":
            argv = [sys.executable, str(ROOT / "bench" / "noop_async.py"), f"{plugin_dir}/{name}.sock"]
        if kind == "noop":
            argv = [sys.executable, "-m", "gunicorn", "-k", worker, "-w", "1", "--threads", "8",
                    "--worker-connections", "10000", "--keep-alive", "75",
                    "-b", f"unix:{plugin_dir}/{name}.sock", "--chdir", str(ROOT / "bench"),
                    "noop_plugin:app"]
        plugin = PluginProcess(name, docker_host=f"unix://{base}/docker.sock", argv=argv,
                               worker_class=worker, log_path=base / "plugin.log", plugin_dir=plugin_dir)
        plugin.start()
    d = PrivateDaemon(base, authz_plugins=names)
    d.start()
    return d, plugin


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--workers", default="gevent,gthread,sync")
    args = ap.parse_args()
    workers = args.workers.split(",")

    setups: dict[str, tuple] = {}
    try:
        setups["none"] = start("none", "", "n")
        setups["noop/asyncio"] = start("asyncio", "", "a")
        for w in workers:
            setups[f"noop/{w}"] = start("noop", w, "o")
            setups[f"dockguard/{w}"] = start("dockguard", w, "d")
        conns = {k: KeepAlive(v[0].socket) for k, v in setups.items()}
        times: dict[str, list[float]] = {k: [] for k in setups}
        for i in range(args.warmup + args.rounds):
            for k, c in conns.items():
                try:
                    dt = c.get()
                except (OSError, RuntimeError):
                    conns[k] = c = KeepAlive(setups[k][0].socket)
                    dt = c.get()
                if i >= args.warmup:
                    times[k].append(dt)
        none = statistics.median(times["none"])
        print(f"GET /containers/json, {args.rounds} interleaved rounds (ms), "
              f"dockerd {setups['none'][0].version().get('Version', '?')}")
        print(f"{'setup':22} {'median':>8} {'p90':>8}")
        for k, xs in times.items():
            print(f"{k:22} {statistics.median(xs) * 1e3:8.3f} {pct(xs, 0.9) * 1e3:8.3f}")
        print()
        for w in workers:
            noop = statistics.median(times[f"noop/{w}"])
            dg = statistics.median(times[f"dockguard/{w}"])
            ratio = (dg - none) / (noop - none) if noop > none else float("nan")
            print(f"{w:8} overhead ratio (dockguard - none) / (noop - none) at the median: {ratio:.2f}"
                  f"   [dockguard +{(dg - none) * 1e3:.3f} ms, noop +{(noop - none) * 1e3:.3f} ms]")
        floor = statistics.median(times["noop/asyncio"])
        for w in workers:
            dg = statistics.median(times[f"dockguard/{w}"])
            print(f"{w:8} (dockguard - none) / (asyncio no-op - none) at the median: "
                  f"{(dg - none) / (floor - none):.2f}   [asyncio no-op +{(floor - none) * 1e3:.3f} ms]")
    finally:
        for d, p in setups.values():
            d.remove()
            if p:
                p.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
