"""dockerd and a plugin whose socket is held the way dockguard-authz.socket holds it.

Before socket activation: dockerd exited ~15 s after start when the plugin was not up yet,
and with the plugin down every docker call retried ~32 s, then failed. With the socket held,
dockerd's calls queue in the backlog until the plugin (re)starts, and are then answered.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dockguard.harness.plugin import PLUGIN_DIR
from dockguard.harness.daemon import PrivateDaemon
from tests.conftest import require_dockerd, short_tmpdir

pytestmark = pytest.mark.docker


class HeldPlugin:
    """A listening socket under /run/docker/plugins (systemd's part) and the plugin process
    started on it with LISTEN_FDS, as systemd starts dockguard-authz.service."""

    def __init__(self, base: Path, name: str, docker_host: str):
        self.base = base
        self.path = PrivateDaemon(base).plugin_dir / f"{name}.sock"   # the daemon's own, not the host's
        self.docker_host = docker_host
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        self.listener.listen(4096)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.base / "plugin.log", "ab")
        cmd = [sys.executable, "-m", "dockguard.cli", "authz", "serve", "--plugin-name", "dockguard",
               "--docker-host", self.docker_host]
        fd = self.listener.fileno()
        self.proc = subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", *cmd],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     pass_fds=(3,), preexec_fn=lambda: os.dup2(fd, 3))
        log.close()

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(30)

    def close(self) -> None:
        self.kill(signal.SIGTERM)
        self.listener.close()
        self.path.unlink(missing_ok=True)

    def log(self) -> str:
        return (self.base / "plugin.log").read_text(errors="replace")


def timed(fn):
    t0 = time.monotonic()
    res = fn()
    return res, time.monotonic() - t0


def test_dockerd_waits_for_the_plugin_and_calls_queue_across_restarts():
    require_dockerd()
    base = short_tmpdir("dgs")
    name = "dg-test-" + base.name
    d = PrivateDaemon(base, authz_plugins=[name])
    held = HeldPlugin(base, name, d.host)
    try:
        # dockerd starts while the plugin is not running yet: its activation call waits
        timer = threading.Timer(3.0, held.start)
        timer.start()
        d.start(timeout=120)
        timer.join()
        assert held.starts == 1
        assert d.docker("ps").returncode == 0

        # SIGKILL: calls made while it is down are answered once it is back
        held.kill()
        result = {}
        t = threading.Thread(target=lambda: result.update(r=timed(lambda: d.docker("ps", timeout=300))))
        t.start()
        time.sleep(2.0)
        assert t.is_alive(), "docker ps should wait for the plugin, not fail"
        held.start()
        t.join(300)
        (res, took) = result["r"]
        assert res.returncode == 0, res.stderr
        print(f"docker ps across a SIGKILL + restart 2 s later: {took:.1f} s")

        # an orderly restart (SIGTERM, as systemctl restart): no traceback, calls keep working
        held.kill(signal.SIGTERM)
        held.start()
        res, took = timed(lambda: d.docker("ps"))
        assert res.returncode == 0, res.stderr
        print(f"docker ps right after a SIGTERM restart: {took:.1f} s")
        assert "Traceback" not in held.log(), held.log()[-3000:]
    finally:
        d.remove()
        held.close()
