"""A private dockerd: own data-root, exec-root, pidfile, socket and containerd namespace.

Used by the test fixtures, the benchmarks and the README's sandbox. It never touches a
system-wide daemon: everything it creates lives under one base directory, and `stop()`
tears it all down (containers, the daemon, its containerd).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


class DaemonError(RuntimeError):
    """The private daemon could not be started or driven."""


def find_busybox() -> str:
    for cand in BUSYBOX_CANDIDATES:
        if os.path.isfile(cand):
            out = subprocess.run([cand, "--list"], capture_output=True, text=True)
            if out.returncode == 0 and "sh" in out.stdout.split():
                return cand
    raise DaemonError("busybox-static not found: apt-get install -y busybox-static")


def busybox_rootfs_tar(dest: Path, busybox: str | None = None) -> Path:
    """Write a tar of a minimal rootfs: /bin/busybox, one symlink per applet, passwd/group."""
    busybox = busybox or find_busybox()
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    with tarfile.open(dest, "w") as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)

        def add_text(name: str, text: str) -> None:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "etc", "dev", "proc", "sys", "root", "var", "run"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        tar.add(busybox, arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
        add_text("etc/passwd", PASSWD)
        add_text("etc/group", GROUP)
    return dest


@dataclass
class PrivateDaemon:
    """One dockerd of our own. `base` should be short: unix socket paths are capped at 108 bytes."""

    base: Path
    authz_plugins: list[str] = field(default_factory=list)
    runtimes: dict[str, dict] = field(default_factory=dict)
    default_runtime: str | None = None
    extra_args: list[str] = field(default_factory=list)
    dockerd: str = "dockerd"
    proc: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.base / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def data_root(self) -> Path:
        return self.base / "root"

    @property
    def exec_root(self) -> Path:
        return self.base / "exec"

    @property
    def log_path(self) -> Path:
        return self.base / "dockerd.log"

    @property
    def namespace(self) -> str:
        """containerd namespaces must match [A-Za-z0-9]+([._-][A-Za-z0-9]+)*: a temp dir name
        may hold '_' at its ends, so derive the namespace from a digest of the path."""
        return "dg-" + hashlib.sha1(str(self.base).encode()).hexdigest()[:16]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env.pop("DOCKER_CONTEXT", None)
        env["DOCKER_CONFIG"] = str(self.base / "client")
        return env

    def argv(self) -> list[str]:
        args = [
            self.dockerd,
            "--config-file", str(self.base / "daemon.json"),
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--pidfile", str(self.base / "docker.pid"),
            "-H", self.host,
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            "--containerd-namespace", self.namespace,
            "--containerd-plugins-namespace", self.namespace + "-p",
            "--shutdown-timeout", "2",
        ]
        for plugin in self.authz_plugins:
            args.append(f"--authorization-plugin={plugin}")
        return args + list(self.extra_args)

    def write_config(self) -> None:
        conf: dict = {}
        if self.runtimes:
            conf["runtimes"] = self.runtimes
        if self.default_runtime:
            conf["default-runtime"] = self.default_runtime
        (self.base / "daemon.json").write_text(json.dumps(conf, indent=2))

    def start(self, timeout: float = 60.0) -> "PrivateDaemon":
        if shutil.which(self.dockerd) is None:
            raise DaemonError(f"{self.dockerd} not found: apt-get install -y docker.io containerd runc")
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "client").mkdir(exist_ok=True)
        self.write_config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DaemonError(f"dockerd exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.socket.exists() and self.ping():
                return self
            time.sleep(0.1)
        self.stop()
        raise DaemonError(f"dockerd did not answer within {timeout}s:\n{self.log_tail()}")

    def ping(self) -> bool:
        """GET /_ping over the socket (authz plugins are asked about it too)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(str(self.socket))
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
                data = s.recv(4096)
            return data.startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def docker(self, *args: str, check: bool = False, input: str | bytes | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
        """Run the real docker CLI against this daemon."""
        text = not isinstance(input, bytes)
        return subprocess.run(["docker", *args], env=self.env(), capture_output=True, text=text,
                              input=input, timeout=timeout, check=check)

    def import_busybox(self, tag: str = "busybox:latest") -> str:
        with tempfile.TemporaryDirectory(dir=self.base) as tmp:
            tar = busybox_rootfs_tar(Path(tmp) / "rootfs.tar")
            res = self.docker("import", "--change", 'CMD ["sh"]', str(tar), tag)
        if res.returncode != 0:
            raise DaemonError(f"docker import failed: {res.stderr}")
        return res.stdout.strip()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop dockerd (it stops our containers) and whatever it leaves behind."""
        if self.proc and self.proc.poll() is None:
            # dockerd stops its containers on SIGTERM (within --shutdown-timeout); no API
            # call here, since a guarded daemon may refuse `rm -f`.
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._reap_leftovers()

    def restart(self, timeout: float = 60.0) -> "PrivateDaemon":
        """Restart dockerd *keeping* its containers (unlike stop()): SIGTERM, wait, start.

        As on a real daemon restart, running containers are stopped by dockerd (give them a
        short --stop-timeout) and those with a restart policy are started again at boot.
        """
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)
        return self.start(timeout)

    def _reap_leftovers(self) -> None:
        """Kill any process still holding our exec-root (shims, containerd) and unmount."""
        import psutil
        root = str(self.base)
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                cmd = " ".join(p.info["cmdline"] or [])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if root in cmd and p.pid != os.getpid():
                try:
                    p.kill()
                except psutil.Error:
                    pass
        mounts = []
        try:
            with open("/proc/self/mounts") as f:
                for line in f:
                    mp = line.split()[1].replace("\\040", " ")
                    if mp.startswith(root + "/"):
                        mounts.append(mp)
        except OSError:
            pass
        for mp in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
