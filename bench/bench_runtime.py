"""What does dockguard-runtime cost? `docker run --rm busybox true`, runc vs the wrapper.

One private dockerd with several runtimes, timed side by side in one run, interleaved (each
round runs every variant once, in a shuffled order) so drift in the machine hits all alike:
  runc             the stock runtime
  wrapper          dockguard-runtime with runtimeArgs `--policy FILE --docker-root DIR`, no
                   spec: the wrapper judging every create (Python on each), as usually
                   registered (dockerd then adds its own /bin/sh layer)
  wrapper-noargs   the same without runtimeArgs (root baked in at install, built-in policy):
                   the wrapper alone, without dockerd's sh layer
  wrapper+hooks    dockguard-runtime with a daemon-wide spec: docker-hooks recorder on
                   prestart, poststart and poststop (the judge + the merge + 3 hooks)
  runc+bind        runc, `-v DIR:/data` (a host bind)
  wrapper+bind     the wrapper with the same bind: it is pinned (own mount namespace, staging
                   bind, config.json rewritten), so this is the cost of a container with binds
Prints medians, p90s and ratios to runc (the bind variants to runc+bind). Target: the wrapper
(judge included) adds at most 15% (stretch 10%).
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
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dockguard.harness.daemon import PrivateDaemon
from hookbin import install

TARGET = 1.15
STRETCH = 1.10


def recorder_spec(root: Path, log: Path) -> dict:
    hook = str(root / "hooks" / "docker-hooks")
    return {phase: [{"path": hook, "args": ["docker-hooks", "--state", phase, "--log", str(log)],
                     "env": [], "timeout": 5}]
            for phase in ("prestart", "poststart", "poststop")}


def setup(base: Path) -> PrivateDaemon:
    """`base` must be root's alone from / down (hook-specs and policies are read only from
    such places), hence /var/lib rather than /tmp."""
    root = base / "root"
    root.mkdir(parents=True)
    (base / "logs").mkdir(mode=0o750)
    (base / "data").mkdir()
    policy = base / "policy.toml"
    policy.write_text(f'[hookspec]\nlog_dir = "{base / "logs"}"\n'
                      f'[lists]\nallowed_paths = ["{base / "data"}"]\n')
    install.install_hooks(str(root), policy=str(policy))
    runtime = install.install_runtime(str(base / "bin"), docker_root=str(root))
    spec = base / "hookspec.json"
    spec.write_text(json.dumps(recorder_spec(root, base / "logs" / "docker-hooks.log")))
    d = PrivateDaemon(base, runtimes={
        "wrapper": install.runtime_config(runtime, str(root), policy=str(policy)),
        "wrapper-noargs": {"path": runtime},
        "wrapper-hooks": install.runtime_config(runtime, str(root), str(spec), policy=str(policy)),
    })
    d.start()
    d.import_busybox()
    return d


def time_run(d: PrivateDaemon, runtime: str, bind: str | None = None) -> float:
    argv = ["docker", "run", "--rm", "--runtime", runtime]
    argv += ["-v", f"{bind}:/data"] if bind else []
    argv += ["busybox", "true"]
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

    variants = {"runc": ("runc", False), "wrapper": ("wrapper", False),
                "wrapper-noargs": ("wrapper-noargs", False), "wrapper+hooks": ("wrapper-hooks", False),
                "runc+bind": ("runc", True), "wrapper+bind": ("wrapper", True)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    rng = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="dgb", dir="/var/lib"))
    d = setup(base)
    bind = str(base / "data")
    try:
        for _ in range(args.warmup):
            for runtime, with_bind in variants.values():
                time_run(d, runtime, bind if with_bind else None)
        for _ in range(args.rounds):
            order = list(variants.items())
            rng.shuffle(order)
            for name, (runtime, with_bind) in order:
                times[name].append(time_run(d, runtime, bind if with_bind else None))
        events = sum(1 for _ in open(base / "logs" / "docker-hooks.log"))
        calls = per_call(base, args.calls, rng)
        engine = "dockerd " + d.version().get("Version", "?")
    finally:
        d.remove()

    base_median = statistics.median(times["runc"])
    print(f"docker run --rm busybox true, {args.rounds} interleaved rounds "
          f"(+{args.warmup} warm-up), {engine} + runc; load average {os.getloadavg()[0]:.2f}")
    print(f"{'variant':<15}{'median ms':>11}{'p90 ms':>9}{'ratio':>8}")
    for name, samples in times.items():
        med = statistics.median(samples)
        p90 = sorted(samples)[max(0, math.ceil(0.9 * len(samples)) - 1)]
        ref = statistics.median(times["runc+bind" if name.endswith("+bind") else "runc"])
        print(f"{name:<15}{med * 1000:>11.1f}{p90 * 1000:>9.1f}{med / ref:>8.3f}")
    expected = 3 * (args.warmup + args.rounds)  # wrapper+hooks: three phases per container
    print(f"recorder events logged: {events} (expected {expected})")
    ratio = statistics.median(times["wrapper"]) / base_median
    for name in ("wrapper", "wrapper-noargs"):
        r = statistics.median(times[name]) / base_median
        verdict = "met" if r <= TARGET else "MISSED"
        stretch = " (stretch met)" if r <= STRETCH else ""
        print(f"{name} (judging every create): {100 * (r - 1):+.1f}% vs runc "
              f"(target <= +{100 * (TARGET - 1):.0f}%): {verdict}{stretch}")
    r = statistics.median(times["wrapper+bind"]) / statistics.median(times["runc+bind"])
    print(f"wrapper with a host bind (pinned): {100 * (r - 1):+.1f}% vs runc with the same bind")
    print(f"\nper runtime call ({args.calls} interleaved samples, `--version`):")
    for name, ms in calls.items():
        print(f"  {name:<22}{ms:>7.2f} ms  (+{ms - calls['runc']:.2f})")
    if events != expected:
        print("error: the hooks did not all run", file=sys.stderr)
        return 1
    return 1 if args.check and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
