"""The units and the plugin under systemd's real protocols, without systemd as PID 1.

- `systemd-analyze verify` and `security --offline=true` on the units `dockguard install` writes;
- socket activation with `systemd-socket-activate` (the plugin takes the passed fd, a request
  made before it runs queues and is answered);
- readiness: a NOTIFY_SOCKET listener gets READY=1 from the worker once the app is loaded;
- reload: SIGHUP to the main pid (ExecReload) makes the running worker use the new policy,
  an invalid file keeps the last good one;
- restart: with the socket held (as systemd holds it), a SIGKILLed plugin started again
  answers a request that was queued while it was down.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                                reason="install writes root-owned files")

UNITS = ("dockguard-authz.socket", "dockguard-authz.service", "dockguard-healthd.service")
KILL_REQ = json.dumps({"RequestMethod": "POST", "RequestURI": "/v1.41/containers/x/kill",
                       "RequestUri": "/v1.41/containers/x/kill",
                       "RequestHeaders": {"Content-Length": "0"}}).encode()


def need(tool):
    path = shutil.which(tool)
    assert path, f"{tool} missing: apt-get install systemd"
    return path


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    res = subprocess.run([sys.executable, "-m", "dockguard.cli", "install", "--root", str(root)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return root / "etc/systemd/system"


def test_units_verify(staged):
    need("systemd-analyze")
    res = subprocess.run(["systemd-analyze", "verify", *(f"./{u}" for u in UNITS)], cwd=staged,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr


def exposure(staged: Path, unit: str) -> float:
    res = subprocess.run(["systemd-analyze", "security", "--offline=true", unit], cwd=staged,
                         capture_output=True, text=True, timeout=120)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", res.stdout)
    assert m, res.stdout + res.stderr
    return float(m.group(1))


def test_security_exposure(staged):
    need("systemd-analyze")
    authz = exposure(staged, "dockguard-authz.service")
    healthd = exposure(staged, "dockguard-healthd.service")
    print(f"exposure: dockguard-authz {authz}, dockguard-healthd {healthd}")
    assert authz <= 4.0
    assert healthd <= 3.0   # it keeps CAP_SYS_ADMIN/CAP_SYS_PTRACE and inet sockets for probes
    text = "\n".join(ln for ln in (staged / "dockguard-authz.service").read_text().splitlines()
                     if not ln.startswith("#"))
    # the plugin resolves host paths as dockerd does: nothing may hide them from it
    for hiding in ("PrivateTmp=yes", "PrivateDevices=yes", "ProtectHome=yes", "ProtectHome=tmpfs",
                   "TemporaryFileSystem", "InaccessiblePaths"):
        assert hiding not in text


# ---- the plugin process under systemd's protocols ----------------------------------------

class Notify:
    """A NOTIFY_SOCKET: collects the datagrams sent to it."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def wait(self, text: str, timeout: float = 60.0, after: int = 0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, m in enumerate(self.messages[after:], after):
                if text in m:
                    return i
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        raise AssertionError(f"no {text!r} on NOTIFY_SOCKET within {timeout}s: {self.messages}")


def post(path: Path, url: str, body: bytes = b"", timeout: float = 60.0) -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(f"POST {url} HTTP/1.1\r\nHost: plugin\r\nContent-Length: {len(body)}\r\n"
                  f"Connection: close\r\n\r\n".encode() + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


def kill_decision(sock: Path) -> bool:
    status, payload = post(sock, "/AuthZPlugin.AuthZReq", KILL_REQ)
    assert status == 200, payload
    return json.loads(payload)["Allow"]


def serve_cmd(policy: Path) -> list[str]:
    return [sys.executable, "-m", "dockguard.cli", "authz", "serve", "--plugin-name", "dockguard",
            "--policy", str(policy), "--docker-host", "unix:///nonexistent.sock"]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_socket_activation_readiness_and_reload(tmp_path):
    tool = need("systemd-socket-activate")
    sock = tmp_path / "authz.sock"
    notify = Notify(tmp_path / "notify")
    policy = tmp_path / "policy.toml"
    policy.write_text('[rules]\nkill = "audit"\n')
    log = open(tmp_path / "plugin.log", "wb")
    proc = subprocess.Popen([tool, "-l", str(sock), "-E", f"NOTIFY_SOCKET={notify.path}",
                             "-E", f"PATH={os.environ['PATH']}", *serve_cmd(policy)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "socket not made"
            time.sleep(0.05)
        # The first request triggers the start and waits in the backlog: it is answered.
        status, payload = post(sock, "/Plugin.Activate")
        assert status == 200 and json.loads(payload) == {"Implements": ["authz"]}
        ready = notify.wait("READY=1")
        assert kill_decision(sock) is True                      # kill = audit
        log_text = (tmp_path / "plugin.log").read_text()
        assert '"socket": "(from systemd)"' in log_text and '"version"' in log_text
        # ExecReload: SIGHUP to the main pid; the running worker uses the new policy.
        policy.write_text('[rules]\nkill = "deny"\n')
        os.kill(proc.pid, signal.SIGHUP)
        notify.wait("RELOADING=1", after=ready + 1)
        again = notify.wait("READY=1", after=ready + 1)
        assert kill_decision(sock) is False
        # An invalid file keeps the last good policy, and says why.
        policy.write_text('[rules]\nkill = "maybe"\n')
        os.kill(proc.pid, signal.SIGHUP)
        notify.wait("READY=1", after=again + 1)
        assert kill_decision(sock) is False
        deadline = time.monotonic() + 30
        while "reload failed, keeping policy" not in (tmp_path / "plugin.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "plugin.log").read_text()
            time.sleep(0.1)
        assert "must be one of" in (tmp_path / "plugin.log").read_text()
        assert proc.poll() is None
    finally:
        stop(proc)
        log.close()


def test_sigkilled_plugin_serves_the_same_socket_and_queued_requests(tmp_path):
    """systemd keeps the listening socket across restarts; emulate that holder here."""
    sock = tmp_path / "authz.sock"
    policy = tmp_path / "policy.toml"
    policy.write_text("")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock))
    listener.listen(128)
    ino = sock.stat().st_ino

    def start(n):
        log = open(tmp_path / f"plugin{n}.log", "wb")
        # the fd at 3 and LISTEN_PID = the exec'd process, exactly as systemd passes it
        return subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh",
                                 *serve_cmd(policy)], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, pass_fds=(3,),
                                preexec_fn=lambda: os.dup2(listener.fileno(), 3))

    proc = start(1)
    try:
        status, _ = post(sock, "/Plugin.Activate")
        assert status == 200
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # While it is down, a request connects (the socket is held) and waits.
        result = {}
        t = threading.Thread(target=lambda: result.update(r=post(sock, "/Plugin.Activate", timeout=120)))
        t.start()
        time.sleep(1.0)
        assert t.is_alive(), "the request should wait for the plugin, not fail"
        proc = start(2)
        t.join(120)
        assert result["r"][0] == 200 and json.loads(result["r"][1]) == {"Implements": ["authz"]}
        assert sock.stat().st_ino == ino                        # the same socket, never unlinked
    finally:
        stop(proc)
        listener.close()
