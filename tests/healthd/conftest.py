"""Fixtures for healthd's end-to-end tests: the real sidecar as a subprocess, on a private
dockerd, and helpers that wait for observable state (state files, docker inspect)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from healthd.cli import find
from healthd.store import read_all

P = "dockguard.health."


def wait_for(pred, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Sidecar:
    """`dockguard healthd run` as a real process, logging to a file.

    Tests run it with `--log-flush 0` (every result written at once) so they can watch the
    log grow; the default coalescing is tested on its own."""

    def __init__(self, daemon, state_dir: Path, log_flush: str = "0") -> None:
        self.daemon = daemon
        self.state_dir = state_dir
        self.log_flush = log_flush
        self.log_path = state_dir.parent / (state_dir.name + ".log")
        self.proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "dockguard.cli", "healthd", "run", "--docker-host",
                self.daemon.host, "--state-dir", str(self.state_dir), "--log-flush",
                self.log_flush]

    def start(self) -> "Sidecar":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: (self.metrics().get("connected")
                          and self.metrics().get("pid") == self.proc.pid)
                 or self.proc.poll() is not None, 15, what="healthd to connect")
        assert self.proc.poll() is None, self.log()
        return self

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            return self.proc.wait(15)
        return self.proc.returncode if self.proc else 0

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def metrics(self) -> dict:
        try:
            return json.loads((self.state_dir / ".metrics.json").read_text())
        except (OSError, ValueError):
            return {}

    def record(self, ref: str) -> dict | None:
        hits = find(read_all(self.state_dir), ref) if self.state_dir.is_dir() else []
        return hits[0] if len(hits) == 1 else None

    def health(self, ref: str) -> dict:
        rec = self.record(ref)
        return rec["Health"] if rec else {}

    def status(self, ref: str) -> str | None:
        return self.health(ref).get("Status")

    def wait_status(self, ref: str, status: str, timeout: float = 10.0) -> dict:
        wait_for(lambda: self.status(ref) == status, timeout, what=f"{ref} {status}")
        return self.health(ref)


@pytest.fixture
def names(plain_daemon):
    """Unique container names for one test; the containers are removed afterwards."""
    made: list[str] = []

    def name(prefix: str = "h") -> str:
        n = f"{prefix}-{uuid.uuid4().hex[:8]}"
        made.append(n)
        return n

    yield name
    if made:
        plain_daemon.docker("rm", "-f", *made)


@pytest.fixture
def sidecar(plain_daemon, tmp_path):
    s = Sidecar(plain_daemon, tmp_path / "state").start()
    yield s
    s.stop()


def run(daemon, *args: str) -> str:
    res = daemon.docker(*args)
    assert res.returncode == 0, f"docker {' '.join(args)}: {res.stderr}"
    return res.stdout.strip()


def labels(**kw) -> list[str]:
    out = []
    for k, v in kw.items():
        out += ["-l", f"{P}{k.replace('_', '-')}={v}"]
    return out


def inspect(daemon, name: str) -> dict:
    return json.loads(run(daemon, "inspect", name))[0]


def observe(sc: Sidecar, ref: str, until, timeout: float) -> list[tuple[str, int]]:
    """Poll the state file; return the distinct (Status, FailingStreak) seen until `until`."""
    seen: list[tuple[str, int]] = []

    def step():
        h = sc.health(ref)
        if h:
            cur = (h["Status"], h["FailingStreak"])
            if not seen or seen[-1] != cur:
                seen.append(cur)
        return until(h)

    wait_for(step, timeout, interval=0.02, what=f"{ref} (seen {seen})")
    return seen
