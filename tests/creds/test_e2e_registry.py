"""The guide's `docker login` sequence with the real thing, through docker-credential-dockguard.

Debian's `docker-registry` (distribution 2.8) on loopback with htpasswd auth; a private
dockerd (127.0.0.0/8 is an insecure registry by default, so plain HTTP); the real docker
CLI with `"credsStore": "dockguard"` in a private DOCKER_CONFIG and the helper on PATH.

login -> config.json and the store hold no secret in clear -> push, pull -> rotate-key ->
push with no new login -> key deleted -> push fails saying so -> login again -> push ->
logout -> push refused by the registry.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dockguard.creds import store as S

from ..conftest import IN_CI, short_tmpdir

pytestmark = pytest.mark.docker

USER = "tester"
PASSWORD = "Reg-pa55:w0rd/" + os.urandom(6).hex()
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        msg = f"{tool} not found: apt-get install -y docker-registry apache2-utils"
        if IN_CI:
            pytest.fail(msg + " (CI=true: failing instead of skipping)")
        pytest.skip(msg)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def registry():
    """docker-registry serving 127.0.0.1:PORT, htpasswd auth (bcrypt), storage in a temp dir."""
    exe, htpasswd = need("docker-registry"), need("htpasswd")
    base = short_tmpdir("dgreg")
    res = subprocess.run([htpasswd, "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True)
    (base / "htpasswd").write_text(res.stdout)
    port = free_port()
    (base / "config.yml").write_text(f"""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {base}/data
http:
  addr: 127.0.0.1:{port}
  secret: dockguard-test-only
auth:
  htpasswd:
    realm: dockguard-test
    path: {base}/htpasswd
""")
    log = open(base / "registry.log", "wb")
    proc = subprocess.Popen([exe, "serve", str(base / "config.yml")], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2)
        except urllib.error.HTTPError as e:
            if e.code == 401:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"docker-registry did not start:\n{(base / 'registry.log').read_text()}")
        time.sleep(0.1)
    yield {"host": f"127.0.0.1:{port}", "base": base}
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    shutil.rmtree(base, ignore_errors=True)


class Client:
    """The docker CLI with a private DOCKER_CONFIG whose credsStore is dockguard."""

    def __init__(self, daemon, config: Path, bin_dir: Path):
        self.daemon, self.config = daemon, config
        self.env = daemon.env()
        self.env["DOCKER_CONFIG"] = str(config)
        self.env["PATH"] = f"{bin_dir}:{self.env['PATH']}"
        self.outputs: list[str] = []

    def __call__(self, *args: str, input: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        res = subprocess.run([self.daemon.engine.cli, *args], env=self.env, input=input, capture_output=True,
                             text=True, timeout=timeout)
        self.outputs.append(res.stdout + res.stderr)
        return res

    def creds(self, *args: str) -> subprocess.CompletedProcess:
        res = subprocess.run([sys.executable, "-m", "dockguard.cli", "creds", *args], env=self.env,
                             capture_output=True, text=True, timeout=120, cwd=REPO)
        self.outputs.append(res.stdout + res.stderr)
        return res


def assert_no_secret(blob: bytes | str, where: str) -> None:
    if isinstance(blob, str):
        blob = blob.encode()
    for form in (PASSWORD, base64.b64encode(PASSWORD.encode()).decode(),
                 base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(), json.dumps(PASSWORD)):
        assert form.encode() not in blob, f"secret found in {where}"


def test_guide_login_sequence_with_the_helper(daemon_factory, registry, helper_bin):
    d = daemon_factory()
    host = registry["host"]
    d.forward_port(int(host.rsplit(":", 1)[1]))   # the daemon runs in its own netns
    config = short_tmpdir("dgcfg")
    (config / "config.json").write_text(json.dumps({"credsStore": "dockguard"}))
    docker = Client(d, config, helper_bin.parent)
    image = f"{host}/dg/busybox"

    # The registry really wants a login.
    assert docker("tag", "busybox:latest", f"{image}:1").returncode == 0
    res = docker("push", f"{image}:1")
    assert res.returncode != 0 and ("no basic auth credentials" in res.stderr or "unauthorized" in res.stderr), res

    res = docker("login", "-u", USER, "--password-stdin", host, input=PASSWORD)
    assert res.returncode == 0, res.stderr
    assert "Login Succeeded" in res.stdout
    assert "unencrypted" not in res.stderr  # the CLI's plain-text warning is gone

    conf = json.loads((config / "config.json").read_text())
    assert conf["credsStore"] == "dockguard"
    assert not any(v for v in conf.get("auths", {}).get(host, {}).values()), conf
    assert_no_secret((config / "config.json").read_bytes(), "config.json")
    for name in (S.KEY_NAME, S.STORE_NAME):
        st = (config / name).stat()
        assert st.st_mode & 0o777 == 0o600 and st.st_uid == os.geteuid()
        assert_no_secret((config / name).read_bytes(), name)
    assert host in json.loads((config / S.STORE_NAME).read_text())["entries"]

    # Two logins at once (the same registry under two names): both land.
    port = host.rsplit(":", 1)[1]
    logins = [subprocess.Popen([d.engine.cli, "login", "-u", USER, "--password-stdin", name], env=docker.env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for name in (f"localhost:{port}", host)]
    for p in logins:
        out, err = p.communicate(PASSWORD, timeout=180)
        docker.outputs.append(out + err)
        assert p.returncode == 0, err
    assert {host, f"localhost:{port}"} <= set(json.loads((config / S.STORE_NAME).read_text())["entries"])
    res = docker("logout", f"localhost:{port}")
    assert res.returncode == 0, res.stderr

    res = docker("push", f"{image}:1")
    assert res.returncode == 0, res.stderr
    assert docker("rmi", f"{image}:1").returncode == 0
    res = docker("pull", f"{image}:1")
    assert res.returncode == 0, res.stderr

    # Key rotation: no new login needed.
    old_key = json.loads((config / S.KEY_NAME).read_text())["id"]
    res = docker.creds("rotate-key")
    assert res.returncode == 0, res.stderr
    assert json.loads((config / S.KEY_NAME).read_text())["id"] != old_key
    docker("tag", "busybox:latest", f"{image}:2")
    res = docker("push", f"{image}:2")
    assert res.returncode == 0, res.stderr

    res = docker.creds("status", "--json")
    assert res.returncode == 0, res.stderr
    status = json.loads(res.stdout)
    assert status["registries"] == [{"server": host, "username": USER, "state": "ok"}]
    assert status["config_json"]["plaintext_auths"] == []

    # The guide: delete the key, push fails. Here it says why, not "illegal base64 data".
    os.unlink(config / S.KEY_NAME)
    docker("tag", "busybox:latest", f"{image}:3")
    res = docker("push", f"{image}:3")
    assert res.returncode != 0
    assert "the key was removed: run docker login again" in res.stderr, res.stderr
    assert "base64" not in res.stderr
    res = docker("pull", f"{image}:1")
    assert res.returncode != 0 and "the key was removed: run docker login again" in res.stderr, res.stderr

    # ... and logging in again fixes it.
    res = docker("login", "-u", USER, "--password-stdin", host, input=PASSWORD)
    assert res.returncode == 0, res.stderr
    res = docker("push", f"{image}:3")
    assert res.returncode == 0, res.stderr

    # logout erases the entry: the registry refuses again.
    res = docker("logout", host)
    assert res.returncode == 0 and "WARNING" not in res.stderr, res.stderr
    assert host not in json.loads((config / S.STORE_NAME).read_text())["entries"]
    res = docker("push", f"{image}:3")
    assert res.returncode != 0

    for i, out in enumerate(docker.outputs):
        assert_no_secret(out, f"command output #{i}")
    assert_no_secret(d.log_path.read_bytes(), "dockerd's log")
    for p in config.rglob("*"):
        if p.is_file():
            assert_no_secret(p.read_bytes(), str(p))
    shutil.rmtree(config, ignore_errors=True)
