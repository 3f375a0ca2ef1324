"""What does docker-credential-dockguard cost per call? The docker CLI starts it for every
push, pull and login.

Variants, interleaved (each round runs every one once, shuffled), so the machine's drift
hits all alike:
  python -IS        the interpreter alone (the floor for any Python helper)
  version           the installed helper (-I -S front), `version`: no crypto imported
  get (no store)    `get` for a user with no login yet: not found, no crypto imported
  get               `get` of a stored login: the store verified and the entry decrypted
  get (console)     the same through the setuptools console script (site + editable finder)
  docker --version  the docker CLI itself, for scale
Prints CPU time (user+sys, steadier than wall time on a shared VM) and wall medians per
call, and ratios to the bare interpreter.

    .venv/bin/python bench/bench_creds.py [--rounds 40]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dockguard.creds import enable
from hookbin.install import real_python

URL = "127.0.0.1:5000"


def cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40, help="calls per variant (default 40)")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dgbench-creds"))
    try:
        helper = enable.install_helper(str(base / "bin"))
        cfg, empty = base / "cfg", base / "empty"
        cfg.mkdir(mode=0o700)
        empty.mkdir(mode=0o700)
        env = {"PATH": "/usr/bin:/bin", "DOCKER_CONFIG": str(cfg)}
        subprocess.run([helper, "store"], input=json.dumps({"ServerURL": URL, "Username": "u", "Secret": "s"}),
                       text=True, env=env, check=True)
        console = shutil.which("docker-credential-dockguard", path=os.path.dirname(sys.executable))
        console_cmd = [console, "get"] if console else [sys.executable, "-m", "dockguard.creds.helper", "get"]
        variants = {
            "python -IS": ([real_python(), "-IS", "-c", "pass"], env),
            "version": ([helper, "version"], env),
            "get (no store)": ([helper, "get"], dict(env, DOCKER_CONFIG=str(empty))),
            "get": ([helper, "get"], env),
            "get (console)": (console_cmd, env),
            "docker --version": ([shutil.which("docker") or "docker", "--version"], env),
        }
        cpu = {k: 0.0 for k in variants}
        wall: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.rounds):
            order = list(variants)
            random.shuffle(order)
            for name in order:
                cmd, e = variants[name]
                c0, t0 = cpu_now(), time.perf_counter()
                res = subprocess.run(cmd, input=URL, capture_output=True, text=True, env=e)
                wall[name].append(time.perf_counter() - t0)
                cpu[name] += cpu_now() - c0
                if name == "get" and json.loads(res.stdout)["Secret"] != "s":
                    raise SystemExit("get returned something else")
        floor = cpu["python -IS"] / args.rounds
        print(f"{'variant':18} {'cpu ms':>7} {'wall median':>12} {'cpu ratio':>10}")
        for name in variants:
            c = cpu[name] / args.rounds
            print(f"{name:18} {c * 1000:7.1f} {statistics.median(wall[name]) * 1000:10.1f} ms {c / floor:9.2f}x")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
