"""Issue 13 on private daemons (20.10 and 26): policy reload with requests in flight, an
exception and rollout mode applied live, doctor against a private daemon and a staged root,
diag pidns on a paused child sharing a pid namespace."""
from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from ..conftest import short_tmpdir

DENIED = "authorization denied by plugin"
LOCALTIME = ('[[exceptions]]\nname = "localtime"\nrule = "sensitive-mount"\nbind = "/etc/localtime:ro"\n'
             'why = "containers read the host time zone"\n')


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "dockguard.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def wait_for(pred, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def uniq(p="op"):
    return f"{p}-{uuid.uuid4().hex[:8]}"


# --- reload, exceptions and rollout, live ----------------------------------------------------

@pytest.fixture(scope="module")
def live(guarded_factory):
    base = short_tmpdir("dgop")
    policy = base / "policy.toml"
    policy.write_text("")
    return guarded_factory(policy=str(policy), base=base), policy


def hup(g):
    os.kill(g.plugin.proc.pid, signal.SIGHUP)


def test_reload_applies_an_exception_without_dropping_requests(live):
    g, policy = live
    ro = ("run", "--rm", "-v", "/etc/localtime:/etc/localtime:ro", "busybox", "true")
    r = g.docker(*ro)
    assert r.returncode != 0 and DENIED in r.stderr and "[sensitive-mount]" in r.stderr, r.stderr
    assert "dockguard: dockguard:" not in r.stderr and f"{g.plugin.name}: [sensitive-mount]" in r.stderr

    # requests keep flowing through every reload
    errors, done = [], threading.Event()

    def traffic():
        while not done.is_set():
            try:
                status, body = g.daemon.api("GET", "/containers/json")
                if status != 200:
                    errors.append((status, body[:200]))
            except OSError as exc:
                errors.append(repr(exc))
    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        write(policy, LOCALTIME)
        for _ in range(3):
            hup(g)
            time.sleep(0.5)
        wait_for(lambda: g.docker(*ro).returncode == 0, what="the exception after SIGHUP")
    finally:
        done.set()
        for t in threads:
            t.join(30)
    assert errors == [], errors[:5]
    rec = [x for x in g.audit_lines() if x["action"] == "container.create" and x["exceptions"]][-1]
    assert rec["exceptions"] == ["localtime"] and rec["image"] == "busybox"
    assert rec["decision"] == "audit" and rec["rule"] == ["file-bind-mount"]  # a file: the audit rule stays
    assert rec["client"].startswith("Docker-Client/")
    # what the exception does not cover
    for args in (["-v", "/etc/localtime:/etc/localtime"], ["-v", "/etc:/x:ro"]):
        r = g.docker("run", "--rm", *args, "busybox", "true")
        assert r.returncode != 0 and "[sensitive-mount]" in r.stderr, (args, r.stderr)

    # an invalid file keeps the last good policy, and the log says why
    write(policy, LOCALTIME + '[rules]\nprivileged = "maybe"\n')
    hup(g)
    wait_for(lambda: "reload failed, keeping policy" in g.plugin.log_path.read_text(), what="reload failure")
    assert "must be one of" in g.plugin.log_path.read_text()
    assert g.docker(*ro).returncode == 0
    assert g.plugin.proc.poll() is None


def test_rollout_mode_audits_instead_of_refusing(live):
    g, policy = live
    write(policy, 'mode = "audit"\n')
    hup(g)
    name = uniq()
    wait_for(lambda: g.docker("create", "--name", name, "--cap-add", "SYS_ADMIN", "busybox", "true").returncode == 0,
             what="rollout mode after SIGHUP")
    rec = [x for x in g.audit_lines() if x["container"] == name][-1]
    assert rec["decision"] == "audit" and rec["rule"] == ["dangerous-capability"] and rec["msg"]
    g.docker("rm", "-f", name)
    write(policy, "")
    hup(g)
    wait_for(lambda: g.docker("create", "--cap-add", "SYS_ADMIN", "busybox", "true").returncode != 0,
             what="enforce again")


def test_allowed_reads_are_left_out_by_default(live):
    g, _ = live
    before = len(g.audit_lines())
    for _ in range(5):
        assert g.daemon.api("GET", "/containers/json")[0] == 200
    assert not [x for x in g.audit_lines()[before:] if x["action"] == "read"]


# --- in flight: a request waiting on a slow lookup is answered across a reload ---------------

class _SlowDocker(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path.endswith("/_ping"):
            self.send_response(200)
            self.send_header("Api-Version", "1.41")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")
            return
        if self.path.endswith("/version"):
            body = json.dumps({"ApiVersion": "1.41", "Version": "20.10.24"}).encode()
            self.send_response(200)
        else:
            time.sleep(4)  # the lookup the request waits on
            body = b'{"message": "No such container"}'
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, *a):
        pass


def _post(sock: Path, url: str, body: bytes = b"", timeout: float = 60) -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        s.sendall(f"POST {url} HTTP/1.1\r\nHost: plugin\r\nContent-Length: {len(body)}\r\n"
                  f"Connection: close\r\n\r\n".encode() + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


def test_a_request_in_flight_is_answered_across_a_reload(tmp_path):
    from dockguard.harness.plugin import PluginProcess
    base = short_tmpdir("dgif")
    fake = _SlowDocker(str(base / "docker.sock"), _Handler)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    policy = base / "policy.toml"
    policy.write_text("")
    p = PluginProcess("dg-inflight", docker_host=f"unix://{base}/docker.sock", policy=str(policy),
                      log_path=base / "plugin.log", plugin_dir=base / "plugins")
    p.start()
    try:
        start = json.dumps({"RequestMethod": "POST", "RequestUri": "/v1.41/containers/web/start",
                            "RequestHeaders": {"Content-Length": "0"}}).encode()
        got = {}
        t = threading.Thread(target=lambda: got.update(r=_post(p.socket, "/AuthZPlugin.AuthZReq", start)))
        t0 = time.monotonic()
        t.start()
        time.sleep(1.0)
        write(policy, LOCALTIME)
        os.kill(p.proc.pid, signal.SIGHUP)
        t.join(60)
        # answered: the lookup's 404 means dockerd itself will answer "no such container"
        assert got["r"][0] == 200 and json.loads(got["r"][1])["Allow"] is True, got
        assert time.monotonic() - t0 >= 3.5, "the request did wait on its lookup"
        wait_for(lambda: "policy reloaded from" in p.log_tail(100), what="reload logged")
    finally:
        p.stop()
        fake.shutdown()
        fake.server_close()


# --- doctor -----------------------------------------------------------------------------------

def _doctor(*args):
    r = cli("doctor", "--json", *args)
    doc = json.loads(r.stdout)
    return r.returncode, {c["check"]: c for c in doc["checks"]}


def test_doctor_against_a_private_daemon_and_a_staged_root(guarded_factory):
    from dockguard.harness import daemon as dmod
    base = short_tmpdir("dgdr")
    g = guarded_factory(base=base, default_runtime="dockguard",
                        runtimes={"dockguard": {"path": dmod.shutil.which("runc") or "/usr/sbin/runc"}})
    root = base / "stage"
    (root / "etc/docker").mkdir(parents=True)
    (root / "etc/docker/daemon.json").write_text(json.dumps(
        {"builder": {"entitlements": {"network-host": False, "security-insecure": False}}}))
    (root / "etc/dockguard").mkdir(parents=True)
    (root / "etc/dockguard/policy.toml").write_text(LOCALTIME)
    state = root / "var/lib/dockguard/health"
    state.mkdir(parents=True)
    (state / ".metrics.json").write_text(json.dumps({"connected": True, "watched": 0}))
    (root / "root/.docker").mkdir(parents=True)
    (root / "root/.docker/config.json").write_text(json.dumps({"auths": {}}))
    common = ("--docker-host", g.daemon.host, "--root", str(root), "--plugin-dir", str(g.daemon.plugin_dir))
    rc, checks = _doctor(*common)
    for cid in ("docker", "authz-plugin", "runtime", "policy", "healthd", "buildkit", "stale-plugins",
                "dead-containers", "restarting", "registry-logins", "preflight"):
        assert checks[cid]["status"] == "ok", (cid, checks[cid])
    assert rc == 0, checks

    # each failure is found, with its fix, and makes the exit code 1
    stale = g.daemon.plugin_dir / "gone.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()  # the file stays, nothing listens: a dead plugin entry
    (root / "etc/dockguard/policy.toml").write_text('[rules]\nprivileged = "maybe"\n')
    (root / "root/.docker/config.json").write_text(json.dumps({"auths": {"r.example": {"auth": "dTpw"}}}))
    (root / "etc/docker/daemon.json").write_text("{}")
    try:
        rc, checks = _doctor(*common)
    finally:
        stale.unlink()
    assert rc == 1
    assert checks["stale-plugins"]["status"] == "fail" and "gone.sock" in checks["stale-plugins"]["detail"]
    assert checks["policy"]["status"] == "fail" and "check-policy" in checks["policy"]["fix"]
    assert checks["registry-logins"]["status"] == "fail" and "r.example" in checks["registry-logins"]["detail"]
    assert checks["buildkit"]["status"] == "warn" and "entitlements" in checks["buildkit"]["fix"]
    text = cli("doctor", *common)
    assert text.returncode == 1 and "fix: " in text.stdout and "CHECK" in text.stdout

    rc, checks = _doctor("--docker-host", "unix:///nonexistent/docker.sock", "--root", str(root))
    assert rc == 1 and checks["docker"]["status"] == "fail"


def test_doctor_without_the_plugin_and_runtime(plain_daemon, tmp_path):
    rc, checks = _doctor("--docker-host", plain_daemon.host, "--root", str(tmp_path),
                         "--plugin-dir", str(plain_daemon.plugin_dir))
    assert rc == 1
    assert checks["authz-plugin"]["status"] == "fail" and "dockguard install" in checks["authz-plugin"]["fix"]
    assert checks["runtime"]["status"] == "fail"


# --- diag pidns -------------------------------------------------------------------------------

def test_diag_pidns_names_the_paused_child(plain_daemon):
    d = plain_daemon
    parent, child = uniq("parent"), uniq("child")
    assert d.docker("run", "-d", "--name", parent, "busybox", "sleep", "600").returncode == 0
    try:
        assert d.docker("run", "-d", "--name", child, "--pid", f"container:{parent}",
                        "busybox", "sleep", "600").returncode == 0
        assert d.docker("pause", child).returncode == 0
        r = cli("diag", "pidns", parent, "--docker-host", d.host, "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["paused_sharing"] == [child] and f"docker unpause {child}" in doc["commands"]
        assert doc["pid_namespace"].startswith("pid:[")
        frozen = [p for p in doc["processes"] if p["frozen"]]
        assert frozen and all(p["comm"] == "sleep" for p in frozen)
        assert any(s["pid"] == frozen[0]["pid"] for s in doc["stuck"])
        assert len(doc["processes"]) >= 2 and all(p["threads"] for p in doc["processes"])
        text = cli("diag", "pidns", parent, "--docker-host", d.host)
        assert f"run: docker unpause {child}" in text.stdout
        assert d.docker("unpause", child).returncode == 0
        doc = json.loads(cli("diag", "pidns", parent, "--docker-host", d.host, "--json").stdout)
        assert doc["paused_sharing"] == [] and doc["stuck"] == [] and doc["commands"] == []
        r = cli("diag", "pidns", "no-such-container", "--docker-host", d.host)
        assert r.returncode == 1 and r.stderr.startswith("dockguard: error: ") and "Traceback" not in r.stderr
    finally:
        d.docker("rm", "-f", child, parent)


# --- healthd: its kills recorded as healthd's, its log in JSON ---------------------------------

def test_healthd_kill_is_recorded_as_healthds(guarded, tmp_path):
    from ..healthd.conftest import Sidecar, labels
    sc = Sidecar(guarded.daemon, tmp_path / "state").start()
    name = uniq("hk")
    try:
        r = guarded.docker("run", "-d", "--name", name, *labels(cmd="test -f /tmp/ok", interval="300ms",
                                                                 retries="1", exit_on_unhealthy="true"),
                           "busybox", "sh", "-c", "touch /tmp/ok; exec sleep 600")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: "healthy" in (sc.record(name) or {}).get("Health", {}).get("Status", ""),
                 what="healthy")
        assert guarded.docker("exec", name, "rm", "/tmp/ok").returncode == 0
        wait_for(lambda: [x for x in guarded.audit_lines() if x["action"] == "container.kill"
                          and x["container"] in (name, (sc.record(name) or {}).get("Id", "-"))],
                 what="healthd's kill in the audit")
        rec = [x for x in guarded.audit_lines() if x["action"] == "container.kill"][-1]
        assert rec["client"].startswith("dockguard-healthd/"), rec
        assert rec["decision"] == "allow" and rec["rule"] == [], rec
        logs = [json.loads(line) for line in sc.log().splitlines() if line.startswith("{")]
        assert any("killing it" in x["msg"] and x["component"] == "healthd" for x in logs), sc.log()[-2000:]
        # a person's docker kill is still advised against
        guarded.docker("start", name)
        r = guarded.docker("kill", name)
        rec = [x for x in guarded.audit_lines() if x["action"] == "container.kill"][-1]
        assert rec["decision"] == "audit" and rec["rule"] == ["kill"] and rec["client"].startswith("Docker-Client/")
    finally:
        sc.stop()
        guarded.docker("rm", "-f", name)
