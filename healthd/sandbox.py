"""healthd's part of the README sandbox: start the sidecar for the sandbox's dockerd, and a
walkthrough showing a container going unhealthy and being exited (137), not revived by
`--restart always`.

The umbrella sandbox calls `start(daemon, state_dir)` and `walkthrough(daemon, step)`;
`step(title, argv, expect_ok)` runs one docker CLI command against the sandbox and prints it.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from dockguard import util

DEMO = "healthd-demo"
_state_dir: Path | None = None


def log_path(state_dir: Path) -> Path:
    return Path(state_dir).parent / "healthd.log"


def start(daemon, state_dir: Path, timeout: float = 20.0) -> subprocess.Popen:
    """Start `dockguard healthd run` for `daemon` (its own session: it outlives the caller;
    stop it with SIGTERM). Returns once it is connected; raises with the log tail if not."""
    global _state_dir
    state_dir = Path(state_dir)
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    proc = util.spawn([sys.executable, "-m", "dockguard.cli", "healthd", "run", "--docker-host",
                       daemon.host, "--state-dir", str(state_dir)], log_path(state_dir))

    def connected() -> bool:
        try:
            m = json.loads((state_dir / ".metrics.json").read_text())
        except (OSError, ValueError):
            return False
        return m.get("pid") == proc.pid and bool(m.get("connected"))

    try:
        util.wait_ready(proc, connected, timeout)
        _state_dir = state_dir
        return proc
    except util.NotReady:
        pass
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)
    tail = log_path(state_dir).read_text(errors="replace").splitlines()[-20:]
    raise RuntimeError("healthd did not start:\n" + "\n".join(tail))


def _wait(title: str, pred, timeout: float) -> bool:
    print(f"... {title} (up to {timeout:g}s)", flush=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    print(f"... gave up waiting: {title}", flush=True)
    return False


def _state(daemon) -> dict:
    res = daemon.docker("inspect", DEMO)
    return json.loads(res.stdout)[0]["State"] if res.returncode == 0 else {}


def _show_status() -> None:
    if _state_dir is None:
        return
    res = subprocess.run([sys.executable, "-m", "dockguard.cli", "healthd", "status", DEMO,
                          "--state-dir", str(_state_dir)], capture_output=True, text=True)
    print(f"$ dockguard healthd status {DEMO} --state-dir {_state_dir}")
    print((res.stdout or res.stderr).rstrip(), flush=True)


def walkthrough(daemon, step) -> None:
    # a leftover from an earlier run: stop and remove it (the sandbox's authz refuses rm -f)
    daemon.docker("stop", "-t", "1", DEMO)
    daemon.docker("rm", DEMO)
    step("healthd: a container asks to be exited when unhealthy (checked every 1s, 2 retries)",
         ["run", "-d", "--name", DEMO, "--restart", "always",
          "-l", "dockguard.health.cmd=test -f /tmp/ok",
          "-l", "dockguard.health.interval=1s", "-l", "dockguard.health.retries=2",
          "-l", "dockguard.health.exit-on-unhealthy=true",
          "busybox", "sh", "-c", "touch /tmp/ok; exec sleep 100000"], True)
    _wait("starting -> healthy at the first check, one interval after start",
          lambda: _health_status() == "healthy", 6)
    _show_status()
    step("healthd: break the check (remove the file it tests)", ["exec", DEMO, "rm", "/tmp/ok"], True)
    _wait("two failed checks -> unhealthy -> SIGKILL",
          lambda: not _state(daemon).get("Running", True), 8)
    step("healthd: exited with 137, and --restart always did not bring it back",
         ["ps", "-a", "--filter", f"name={DEMO}", "--format", "{{.Names}}: {{.Status}}"], True)
    time.sleep(2)
    step("healthd: still down 2 s later; its restart policy is left as it was",
         ["inspect", "--format",
          "exit={{.State.ExitCode}} running={{.State.Running}} restarts={{.RestartCount}} "
          "policy={{.HostConfig.RestartPolicy.Name}}", DEMO], True)
    _show_status()
    step("healthd: clean up (it is stopped, so a plain rm does)", ["rm", DEMO], True)


def _health_status() -> str | None:
    from .cli import find
    from .store import read_all
    if _state_dir is None:
        return None
    hits = find(read_all(_state_dir), DEMO)
    return hits[0]["Health"]["Status"] if len(hits) == 1 else None
