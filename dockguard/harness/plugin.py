"""Start and stop `dockguard authz serve` as a process (sandbox, tests, benchmarks).

dockerd finds a legacy plugin by name through /run/docker/plugins/NAME.sock, and checks at
start that every --authorization-plugin exists: the plugin starts first.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PLUGIN_DIR = Path("/run/docker/plugins")


def activate(sock: Path, timeout: float = 2.0) -> bool:
    """POST /Plugin.Activate over the socket; True when it answers as an authz plugin."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock))
            s.sendall(b"POST /Plugin.Activate HTTP/1.1\r\nHost: plugin\r\nContent-Length: 0\r\n"
                      b"Connection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data.startswith(b"HTTP/1.1 200") and b'"authz"' in data
    except OSError:
        return False


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
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if self.log_path:
            out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"authz plugin exited with {self.proc.returncode}: {self.log_tail()}")
            if self.socket.exists() and activate(self.socket):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"authz plugin did not answer within {timeout}s: {self.log_tail()}")

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
