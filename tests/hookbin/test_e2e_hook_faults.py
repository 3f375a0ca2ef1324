"""Faults in a hook (issue 9): one that hangs, one that leaves a child holding its stdout
open, one that writes megabytes to stderr. The container operation ends within the hook's
timeout with a clear message, and dockerd keeps answering meanwhile (`docker ps`)."""
from __future__ import annotations

import subprocess
import threading
import time
import uuid

import pytest

from hookbin import spec as hs

from .conftest import hook, write_exec

pytestmark = pytest.mark.docker

PROGRAMS = {
    # sleeps past any timeout
    "hang": "#!/bin/sh\nexec /bin/sleep 300\n",
    # exits at once, but a child it leaves behind keeps the hook's stdout and stderr open
    "orphan": "#!/bin/sh\n/bin/sleep 300 &\nexit 0\n",
    # same, and fails: its message must still come back
    "orphanfail": "#!/bin/sh\n/bin/sleep 300 &\necho 'orphan hook says no' >&2\nexit 3\n",
    # 8 MiB on stderr, then fails
    "loud": "#!/bin/sh\nhead -c 8388608 /dev/zero | tr '\\0' x >&2\necho >&2\necho 'loud hook failed' >&2\nexit 1\n",
    # 8 MiB on stderr, then succeeds
    "loudok": "#!/bin/sh\nhead -c 8388608 /dev/zero | tr '\\0' x >&2\nexit 0\n",
}


@pytest.fixture(scope="module")
def hd(hook_daemon):
    for name, text in PROGRAMS.items():
        write_exec(hook_daemon.hooks / f"fault-{name}", text)
    return hook_daemon


def run_with_ps(hd, *args, budget: float = 120):
    """docker run in a thread while docker ps is asked every half second; returns the run's
    result, its duration and the slowest ps (each ps must answer)."""
    out = {}

    def target():
        t0 = time.monotonic()
        out["res"] = hd.d.docker("run", "--rm", *args, timeout=budget)
        out["took"] = time.monotonic() - t0

    t = threading.Thread(target=target)
    t.start()
    slowest = 0.0
    while t.is_alive():
        t0 = time.monotonic()
        ps = hd.d.docker("ps", timeout=60)
        slowest = max(slowest, time.monotonic() - t0)
        assert ps.returncode == 0, ps.stderr
        time.sleep(0.5)
    t.join()
    return out["res"], out["took"], slowest


def leftovers() -> list[str]:
    return subprocess.run(["pgrep", "-f", "^/bin/sleep 300$"], capture_output=True, text=True).stdout.split()


@pytest.mark.parametrize("program, timeout, ok, message", [
    ("hang", 2, False, "fault-hang ran past its timeout of 2s: killed with its process group"),
    ("orphan", 2, True, None),
    ("orphanfail", 2, False, "orphan hook says no"),
    ("loud", 10, False, "loud hook failed"),
    ("loudok", 10, True, None),
])
def test_faulty_hook_ends_within_its_timeout(hd, program, timeout, ok, message):
    spec = hd.spec(f"fault-{program}", prestart=[hook(hd.hooks / f"fault-{program}", timeout=timeout)])
    name = f"dgfault-{uuid.uuid4().hex[:8]}"
    res, took, slowest = run_with_ps(hd, "--name", name, "--label", f"{hs.LABEL}={spec}", "busybox", "true")
    print(f"{program}: docker run {'ok' if res.returncode == 0 else 'refused'} in {took:.1f} s "
          f"(hook timeout {timeout} s), slowest docker ps meanwhile {slowest:.1f} s, "
          f"stderr {len(res.stderr)} bytes")
    assert (res.returncode == 0) == ok, res.stderr[-2000:]
    if message:
        assert message in res.stderr, res.stderr[-2000:]
    assert len(res.stderr) < 64 * 1024, "the hook's megabytes reached the client"
    assert hd.d.docker("ps", "-aq", "--filter", f"name={name}").stdout.strip() == ""
