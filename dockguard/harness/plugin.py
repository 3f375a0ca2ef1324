"""Start and stop `dockguard authz serve` as a process (sandbox, tests, benchmarks).

dockerd finds a legacy plugin by name through /run/docker/plugins/NAME.sock, and checks at
start that every --authorization-plugin exists: the plugin starts first.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from dockguard import util

PLUGIN_DIR = Path("/run/docker/plugins")


def activate(sock: Path, timeout: float = 2.0) -> bool:
    """POST /Plugin.Activate over the socket; True when it answers as an authz plugin."""
    return "authz" in (util.plugin_implements(sock, timeout) or [])


class PluginProcess:
    def __init__(self, name: str, *, docker_host: str | None = None, policy: str | None = None,
                 log_path: Path | None = None, worker_class: str = "gevent",
                 argv: list[str] | None = None, plugin_dir: Path | None = None):
        # plugin_dir: a private daemon's discovery dir (PrivateDaemon.plugin_dir), never the host's
        self.name = name
        self.socket = Path(plugin_dir or PLUGIN_DIR) / f"{name}.sock"
        self.docker_host = docker_host
        self.policy = policy
        self.log_path = log_path
        self.worker_class = worker_class
        self.argv = argv
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        if self.argv is not None:
            return self.argv
        cmd = [sys.executable, "-m", "dockguard.cli", "authz", "serve", "--socket", str(self.socket),
               "--worker-class", self.worker_class]
        if self.worker_class != "gevent":  # bench/bench_authz.py's comparison of worker models
            cmd.append("--benchmark-only")
        if self.docker_host:
            cmd += ["--docker-host", self.docker_host]
        if self.policy:
            cmd += ["--policy", self.policy]
        return cmd

    def start(self, timeout: float = 30.0) -> "PluginProcess":
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.proc = util.spawn(self.command(), self.log_path)
        try:
            util.wait_ready(self.proc, lambda: self.socket.exists() and activate(self.socket), timeout, 0.05)
        except util.NotReady as exc:
            if not exc.exited:
                self.stop()
            raise RuntimeError(f"authz plugin {exc}: {self.log_tail()}") from None
        return self

    def log_tail(self, n: int = 30) -> str:
        if not self.log_path:
            return ""
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.socket.unlink()
        except FileNotFoundError:
            pass
