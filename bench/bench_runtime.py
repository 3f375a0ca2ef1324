"""What does dockguard-runtime cost? `docker run --rm busybox true`, runc vs the wrapper.

One private dockerd with three runtimes, timed side by side in one run, interleaved (each
round runs every variant once, in a shuffled order) so drift in the machine hits all alike:
  runc             the stock runtime
  wrapper          dockguard-runtime with runtimeArgs `--docker-root DIR`, no spec: the wrapper
                   alone, as usually registered (dockerd then adds its own /bin/sh layer)
  wrapper-noargs   the same without runtimeArgs (the root baked in at install): the wrapper
                   alone, without dockerd's sh layer
  wrapper+hooks    dockguard-runtime with a daemon-wide spec: docker-hooks recorder on
                   prestart, poststart and poststop (the wrapper's Python path + 3 hooks)
Prints medians, p90s and ratios to runc. Target: the wrapper alone adds at most 10%.
Then, less exposed to the machine's noise, the cost per runtime call (dockerd makes four per
`docker run --rm`: create, start, delete, delete --force): `runc --version` directly, through
the wrapper, and through the wrapper behind a script like the one dockerd writes for
runtimes with runtimeArgs.

    .venv/bin/python bench/bench_runtime.py [--rounds 40] [--check]
"""
from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dockguard.daemon import PrivateDaemon
from hookbin import install

TARGET = 1.10


def recorder_spec(root: Path, log: Path) -> dict:
    hook = str(root / "hooks" / "docker-hooks")
    return {phase: [{"path": hook, "args": ["docker-hooks", "--state", phase, "--log", str(log)],
                     "env": [], "timeout": 5}]
            for phase in ("prestart", "poststart", "poststop")}


def setup(base: Path) -> PrivateDaemon:
    root = base / "root"
    root.mkdir(parents=True)
    install.install_hooks(str(root))
    runtime = install.install_runtime(str(base / "bin"), docker_root=str(root))
    spec = base / "hookspec.json"
    spec.write_text(json.dumps(recorder_spec(root, base / "docker-hooks.log")))
    d = PrivateDaemon(base, runtimes={
        "wrapper": install.runtime_config(runtime, str(root)),
        "wrapper-noargs": {"path": runtime},
        "wrapper-hooks": install.runtime_config(runtime, str(root), str(spec)),
    })
    d.start()
    d.import_busybox()
    return d


def time_run(d: PrivateDaemon, runtime: str) -> float:
    argv = ["docker", "run", "--rm", "--runtime", runtime, "busybox", "true"]
    t0 = time.perf_counter()
    res = subprocess.run(argv, env=d.env(), capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{runtime}: docker run failed: {res.stderr.strip()}")
    return elapsed


def per_call(base: Path, calls: int, rng: random.Random) -> dict[str, float]:
    """Median wall time of one runtime call, in ms, interleaved."""
    runtime = str(base / "bin" / install.RUNTIME_NAME)
    script = base / "bin" / "dockerd-style"
    script.write_text(f"#!/bin/sh\n{runtime} --docker-root {base / 'root'} $@\n")
    script.chmod(0o755)
    argvs = {
        "runc": ["runc", "--root", str(base / "x"), "--version"],
        "wrapper": [runtime, "--root", str(base / "x"), "--version"],
        "dockerd-sh + wrapper": [str(script), "--root", str(base / "x"), "--version"],
    }
    argvs["runc"][0] = install.which_abs("runc", ("/usr/sbin/runc", "/usr/bin/runc"))
    samples: dict[str, list[float]] = {k: [] for k in argvs}
    for _ in range(calls):
        order = list(argvs.items())
        rng.shuffle(order)
        for name, argv in order:
            t0 = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
            samples[name].append(time.perf_counter() - t0)
    return {k: 1000 * statistics.median(v) for k, v in samples.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--calls", type=int, default=200, help="samples for the per-call timing")
    ap.add_argument("--check", action="store_true", help="exit 1 if the wrapper alone misses the target")
    args = ap.parse_args(argv)

    variants = {"runc": "runc", "wrapper": "wrapper", "wrapper-noargs": "wrapper-noargs",
                "wrapper+hooks": "wrapper-hooks"}
    times: dict[str, list[float]] = {name: [] for name in variants}
    rng = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="dgb", dir="/tmp"))
    d = setup(base)
    try:
        for _ in range(args.warmup):
            for runtime in variants.values():
                time_run(d, runtime)
        for _ in range(args.rounds):
            order = list(variants.items())
            rng.shuffle(order)
            for name, runtime in order:
                times[name].append(time_run(d, runtime))
        events = sum(1 for _ in open(base / "docker-hooks.log"))
        calls = per_call(base, args.calls, rng)
    finally:
        d.remove()

    base_median = statistics.median(times["runc"])
    print(f"docker run --rm busybox true, {args.rounds} interleaved rounds "
          f"(+{args.warmup} warm-up), dockerd 20.10 + runc")
    print(f"{'variant':<15}{'median ms':>11}{'p90 ms':>9}{'ratio':>8}")
    for name, samples in times.items():
        med = statistics.median(samples)
        p90 = sorted(samples)[max(0, math.ceil(0.9 * len(samples)) - 1)]
        print(f"{name:<15}{med * 1000:>11.1f}{p90 * 1000:>9.1f}{med / base_median:>8.3f}")
    expected = 3 * (args.warmup + args.rounds)  # wrapper+hooks: three phases per container
    print(f"recorder events logged: {events} (expected {expected})")
    ratio = statistics.median(times["wrapper"]) / base_median
    for name in ("wrapper", "wrapper-noargs"):
        r = statistics.median(times[name]) / base_median
        verdict = "met" if r <= TARGET else "MISSED"
        print(f"{name} alone: {100 * (r - 1):+.1f}% vs runc (target <= +{100 * (TARGET - 1):.0f}%): {verdict}")
    print(f"\nper runtime call ({args.calls} interleaved samples, `--version`):")
    for name, ms in calls.items():
        print(f"  {name:<22}{ms:>7.2f} ms  (+{ms - calls['runc']:.2f})")
    if events != expected:
        print("error: the hooks did not all run", file=sys.stderr)
        return 1
    return 1 if args.check and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
