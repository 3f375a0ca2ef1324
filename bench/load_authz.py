#!/usr/bin/env python3
"""Many concurrent API clients against private dockerds: no plugin, and dockguard (and
optionally the asyncio no-op floor), the same load on each, one after the other.

Each client holds its own kept-alive unix-socket connection (raw HTTP/1.1, asyncio) and
runs `--cycles` rounds of `--reads` cheap reads (ping, version, containers/json, images/json,
inspect of its last container) followed by create -> start -> stop -> rm of a container of
its own. Every request ends in exactly one of:

    answered  its normal answer (201 create, 204/304 start/stop, 204 rm, 200 reads)
    denied    the in-flight rule's clean denial (403 naming [inflight-limit])
    errored   anything else: another status, a reset or closed connection
    lost      no answer within --hang-timeout seconds (a hang; the client then reconnects)

A create that is denied skips its start/stop/rm; a stop or rm that is denied is retried
(each try counted), so every container made is removed.
Prints the counts and p50/p99 per request kind, side by side.

Run as root:  .venv/bin/python bench/load_authz.py [--clients 1000] [--cycles 1] [--reads 4]
                  [--max-inflight N] [--with-noop]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

API = "/v1.41"
OUTCOMES = ("answered", "denied", "errored", "lost")
EXPECTED = {"create": (201,), "start": (204, 304), "stop": (204, 304), "rm": (204,),
            "ping": (200,), "version": (200,), "ps": (200,), "images": (200,), "inspect": (200,)}
READS = ("ping", "version", "ps", "images", "inspect")


def classify(kind: str, status: int | None, body: bytes) -> str:
    """One request's outcome (see the module docstring); status None = no answer in time."""
    if status is None:
        return "lost"
    if status in EXPECTED[kind]:
        return "answered"
    if status == 403 and b"[inflight-limit]" in body:
        return "denied"
    return "errored"


@dataclass
class Tally:
    counts: dict = field(default_factory=lambda: {o: 0 for o in OUTCOMES})
    times: dict = field(default_factory=dict)        # kind -> [seconds] of answered/denied
    examples: list = field(default_factory=list)     # a few errored/lost requests, for the report

    @property
    def sent(self) -> int:
        return sum(self.counts.values())

    def add(self, kind: str, outcome: str, dt: float, detail: str = "") -> None:
        self.counts[outcome] += 1
        if outcome in ("answered", "denied"):
            self.times.setdefault(kind, []).append(dt)
        elif len(self.examples) < 10:
            self.examples.append(f"{kind}: {outcome} {detail}"[:300])


class Conn:
    """One kept-alive HTTP/1.1 connection to dockerd's unix socket."""

    def __init__(self, path: str):
        self.path = path
        self.r = self.w = None

    async def open(self) -> None:
        self.r, self.w = await asyncio.open_unix_connection(self.path, limit=16 * 1024 * 1024)

    def close(self) -> None:
        if self.w is not None:
            self.w.close()
        self.r = self.w = None

    async def request(self, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.w is None:
            await self.open()
        head = f"{method} {API}{target} HTTP/1.1\r\nHost: docker\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        elif method == "POST":
            head += "Content-Length: 0\r\n"
        self.w.write(head.encode() + b"\r\n" + (body or b""))
        await self.w.drain()
        status_line = await self.r.readline()
        if not status_line:
            raise ConnectionError("connection closed by dockerd")
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while (line := await self.r.readline()) not in (b"\r\n", b""):
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
            elif k == b"connection" and b"close" in v.lower():
                close = True
        if chunked:
            payload = b""
            while True:
                size = int((await self.r.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await self.r.readline()
                    break
                payload += await self.r.readexactly(size)
                await self.r.readexactly(2)
        elif length is not None:
            payload = await self.r.readexactly(length)
        else:
            payload = b""
        if close:
            self.close()
        return status, payload


async def one(conn: Conn, tally: Tally, kind: str, method: str, target: str, body: bytes | None,
              hang_timeout: float) -> tuple[str, bytes]:
    t0 = time.perf_counter()
    try:
        status, payload = await asyncio.wait_for(conn.request(method, target, body), hang_timeout)
    except asyncio.TimeoutError:
        conn.close()
        tally.add(kind, "lost", time.perf_counter() - t0, f"{method} {target}")
        return "lost", b""
    except (OSError, ConnectionError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
        conn.close()
        tally.add(kind, "errored", time.perf_counter() - t0, f"{method} {target}: {exc!r}")
        return "errored", b""
    outcome = classify(kind, status, payload)
    tally.add(kind, outcome, time.perf_counter() - t0, f"{method} {target}: {status} {payload[:200]!r}")
    return outcome, payload


async def client(i: int, sock: str, args, tally: Tally, image: str, prefix: str) -> None:
    conn = Conn(sock)
    last = None
    ht = args.hang_timeout
    try:
        for c in range(args.cycles):
            for k in range(args.reads):
                kind = READS[(i + k) % len(READS)]
                if kind == "inspect" and last is None:
                    kind = "ping"
                target = {"ping": "/_ping", "version": "/version", "ps": "/containers/json?limit=5",
                          "images": "/images/json", "inspect": f"/containers/{last}/json"}[kind]
                await one(conn, tally, kind, "GET", target, None, ht)
            name = f"{prefix}{i}-{c}"
            body = json.dumps({"Image": image, "Cmd": ["sleep", "600"], "HostConfig": {}}).encode()
            outcome, payload = await one(conn, tally, "create", "POST", f"/containers/create?name={name}", body, ht)
            if outcome != "answered":
                continue
            last = name
            await one(conn, tally, "start", "POST", f"/containers/{name}/start", None, ht)
            # stop and rm are retried while denied: the container must go either way
            for kind, method, target in (("stop", "POST", f"/containers/{name}/stop?t=0"),
                                         ("rm", "DELETE", f"/containers/{name}")):
                for _attempt in range(50):
                    outcome, _ = await one(conn, tally, kind, method, target, None, ht)
                    if outcome != "denied":
                        break
                    await asyncio.sleep(0.2)
    finally:
        conn.close()


async def run_load(sock: str, args, image: str, prefix: str) -> tuple[Tally, float]:
    tally = Tally()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(i, sock, args, tally, image, prefix) for i in range(args.clients)))
    return tally, time.perf_counter() - t0


def raise_fd_limit(need: int) -> None:
    """Each client holds a socket (and dockerd one per client, plus one to the plugin)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(need, soft), hard), hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        raise SystemExit(f"load_authz: needs {need} open files, the limit is {soft} (ulimit -n)")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


def table(results: dict[str, tuple[Tally, float]]) -> str:
    names = list(results)
    out = [f"{'':10}" + "".join(f"{n:>24}" for n in names)]
    for o in OUTCOMES + ("sent",):
        out.append(f"{o:10}" + "".join(f"{(t.sent if o == 'sent' else t.counts[o]):>24}" for t, _ in results.values()))
    out.append(f"{'wall s':10}" + "".join(f"{w:>24.1f}" for _, w in results.values()))
    out.append("")
    out.append(f"{'ms p50/p99':10}" + "".join(f"{n:>24}" for n in names))
    kinds = [k for k in EXPECTED if any(k in t.times for t, _ in results.values())]
    for k in kinds:
        cells = []
        for t, _ in results.values():
            xs = t.times.get(k, [])
            cells.append(f"{statistics.median(xs) * 1e3:9.2f} / {pct(xs, 0.99) * 1e3:9.2f}" if xs else "-")
        out.append(f"{k:10}" + "".join(f"{c:>24}" for c in cells))
    return "\n".join(out)


def start_setup(kind: str, tag: str, max_inflight: int | None):
    from dockguard.harness.plugin import PluginProcess
    from dockguard.harness.daemon import PrivateDaemon
    base = Path(tempfile.mkdtemp(prefix=f"dgl{tag}", dir="/tmp"))
    plugin, names = None, []
    if kind != "none":
        name = f"dgload-{base.name}"
        names = [name]
        plugin_dir = PrivateDaemon(base).plugin_dir
        argv, policy = None, None
        if kind == "noop":
            argv = [sys.executable, str(ROOT / "bench" / "noop_async.py"), f"{plugin_dir}/{name}.sock"]
        elif max_inflight is not None:
            policy = base / "policy.toml"
            policy.write_text(f"[limits]\nmax_inflight = {max_inflight}\n")
        plugin = PluginProcess(name, docker_host=f"unix://{base}/docker.sock", argv=argv,
                               policy=str(policy) if policy else None,
                               log_path=base / "plugin.log", plugin_dir=plugin_dir)
        plugin.start()
    d = PrivateDaemon(base, authz_plugins=names)
    d.start()
    d.import_busybox()
    return d, plugin


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=1)
    ap.add_argument("--reads", type=int, default=4)
    ap.add_argument("--max-inflight", type=int, help="dockguard's limits.max_inflight (default: the policy's 1000)")
    ap.add_argument("--hang-timeout", type=float, default=600.0)
    ap.add_argument("--with-noop", action="store_true", help="also the asyncio no-op plugin")
    args = ap.parse_args()
    raise_fd_limit(4 * args.clients + 256)

    kinds = ["none"] + (["noop"] if args.with_noop else []) + ["dockguard"]
    results: dict[str, tuple[Tally, float]] = {}
    version = "?"
    for kind in kinds:
        d, p = start_setup(kind, kind[0], args.max_inflight)
        try:
            version = d.version().get("Version", "?")
            results[kind] = asyncio.run(run_load(str(d.socket), args, "busybox:latest", f"l{kind[0]}"))
            left = d.docker("ps", "-aq").stdout.split()
            if left:
                print(f"{kind}: {len(left)} containers left after the load", file=sys.stderr)
        finally:
            d.remove()
            if p:
                p.stop()
    print(f"{args.clients} clients x {args.cycles} cycle(s) of {args.reads} reads + create/start/stop/rm, "
          f"dockerd {version}" + (f", max_inflight {args.max_inflight}" if args.max_inflight else ""))
    print(table(results))
    for kind, (t, _) in results.items():
        for e in t.examples:
            print(f"  {kind}: {e}")
    bad = sum(t.counts["errored"] + t.counts["lost"] for t, _ in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
