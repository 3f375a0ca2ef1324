"""Issue 14, points 1 and 3, on private dockerds.

Point 1: containers created on an UNGUARDED daemon (--pid host, a bind of /etc, --cap-add
SYS_ADMIN, seccomp=unconfined, --privileged), then the same daemon restarted guarded by the
plugin: start, restart, exec, attach, unpause, update and docker cp (through a sensitive
bind) are refused with the rule and the why; benign twins are allowed; a bind source
swapped for a symlink after create is refused at start with where it points now.

Point 3: on an unguarded daemon, plain-runc violating containers with a restart policy are
found by `dockguard preflight`; `dockguard install` refuses to finish while they exist, and
its options accept them by name or turn their restart policy off.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from authz.existing import WHY
from dockguard.harness.plugin import PluginProcess
from dockguard.harness.daemon import PrivateDaemon

from .rawapi import raw

DENIED = "authorization denied by plugin"

VIOLATING = [  # name, docker create options, the rule that refuses it
    ("pidhost", ["--pid", "host"], "host-namespace"),
    ("etcbind", ["-v", "/etc:/x"], "sensitive-mount"),
    ("sysadmin", ["--cap-add", "SYS_ADMIN"], "dangerous-capability"),
    ("unconfined", ["--security-opt", "seccomp=unconfined"], "seccomp-unconfined"),
    ("priv", ["--privileged"], "privileged"),
]


def state(d: PrivateDaemon, name: str) -> dict:
    status, text = raw(d.socket, "GET", f"/v1.41/containers/{name}/json")
    assert status == 200, text
    return json.loads(text)


def wait_running(d: PrivateDaemon, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state(d, name)["State"]["Running"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} did not come back running")


def refused(r: subprocess.CompletedProcess, rule: str) -> str:
    assert r.returncode != 0, r.stdout
    assert DENIED in r.stderr and f"[{rule}]" in r.stderr, r.stderr
    assert "existing container" in r.stderr and WHY in r.stderr, r.stderr
    return r.stderr


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, r.stderr
    return r


@dataclass
class Late:
    daemon: PrivateDaemon
    plugin: PluginProcess
    src: Path

    def docker(self, *args):
        return self.daemon.docker(*args)


@pytest.fixture(scope="module")
def late(daemon_factory):
    """A daemon that ran unguarded, then guarded by dockguard (as on a host where dockguard
    is installed later)."""
    d = daemon_factory()
    src = Path(tempfile.mkdtemp(prefix="dgx", dir="/tmp"))
    (src / "ok").mkdir()
    (src / "swap").mkdir()
    for name, opts, _rule in VIOLATING:
        ok(d.docker("create", "--name", name, "--stop-timeout", "1", *opts, "busybox", "sleep", "600"))
    # running with a restart policy: dockerd starts it again at the guarded boot by itself
    ok(d.docker("run", "-d", "--name", "pidhost-up", "--restart", "always", "--stop-timeout", "1",
                "--pid", "host", "busybox", "sleep", "600"))
    # benign twins
    ok(d.docker("create", "--name", "plain", "--stop-timeout", "1", "busybox", "sleep", "600"))
    ok(d.docker("create", "--name", "okbind", "--stop-timeout", "1", "-v", f"{src}/ok:/ok",
                "busybox", "sleep", "600"))
    ok(d.docker("run", "-d", "--name", "plain-up", "--restart", "always", "--stop-timeout", "1",
                "busybox", "sleep", "600"))
    name = "dg-test-exist-" + d.base.name
    p = PluginProcess(name, docker_host=d.host, log_path=d.base / "plugin.log", plugin_dir=d.plugin_dir)
    p.start()
    try:
        d.authz_plugins = [name]
        d.restart()
        yield Late(d, p, src)
    finally:
        d.stop()
        p.stop()
        shutil.rmtree(src, ignore_errors=True)


@pytest.mark.parametrize("name,opts,rule", VIOLATING, ids=[v[0] for v in VIOLATING])
def test_start_of_a_violating_container_made_before_dockguard_is_refused(late, name, opts, rule):
    msg = refused(late.docker("start", name), rule)
    assert f"existing container {name} (" in msg
    assert f"docker rm {name}" in msg
    assert not state(late.daemon, name)["State"]["Running"]
    refused(late.docker("restart", "-t", "0", name), rule)  # restart starts it too
    assert not state(late.daemon, name)["State"]["Running"]


def test_benign_twins_start_and_stop(late):
    for name in ("plain", "okbind"):
        ok(late.docker("start", name))
        assert state(late.daemon, name)["State"]["Running"]
        ok(late.docker("restart", "-t", "0", name))
        ok(late.docker("stop", "-t", "0", name))


def test_a_violating_container_that_came_back_at_boot_is_fenced(late):
    """The restart policy brought it back with no API call (point 3's hole); through the API,
    nothing more can be done with it than stop it, pause it, or turn its restart policy off."""
    d = late.daemon
    wait_running(d, "pidhost-up")
    refused(late.docker("exec", "pidhost-up", "ps"), "host-namespace")
    status, text = raw(d.socket, "POST", "/v1.41/containers/pidhost-up/attach?logs=1&stream=0&stdout=1")
    assert status == 403 and "[host-namespace]" in text, (status, text)
    status, text = raw(d.socket, "GET", "/v1.41/containers/pidhost-up/attach/ws?stream=1")
    assert status == 403 and "[host-namespace]" in text, (status, text)
    refused(late.docker("update", "--memory", "64m", "--memory-swap", "128m", "pidhost-up"), "host-namespace")
    refused(late.docker("update", "--restart", "on-failure", "pidhost-up"), "host-namespace")
    refused(late.docker("restart", "-t", "0", "pidhost-up"), "host-namespace")
    ok(late.docker("pause", "pidhost-up"))
    refused(late.docker("unpause", "pidhost-up"), "host-namespace")
    assert state(d, "pidhost-up")["State"]["Paused"]
    # the fix the message gives, and preflight's: allowed
    ok(late.docker("update", "--restart", "no", "pidhost-up"))
    assert state(d, "pidhost-up")["HostConfig"]["RestartPolicy"]["Name"] == "no"
    ok(late.docker("stop", "-t", "0", "pidhost-up"))
    refused(late.docker("start", "pidhost-up"), "host-namespace")
    ok(late.docker("rm", "pidhost-up"))


def test_a_benign_running_twin_is_untouched(late):
    d = late.daemon
    wait_running(d, "plain-up")
    r = ok(late.docker("exec", "plain-up", "echo", "inside"))
    assert r.stdout == "inside\n"
    status, text = raw(d.socket, "POST", "/v1.41/containers/plain-up/attach?logs=1&stream=0&stdout=1")
    assert status in (101, 200), (status, text)
    ok(late.docker("update", "--memory", "64m", "--memory-swap", "128m", "plain-up"))
    ok(late.docker("pause", "plain-up"))
    ok(late.docker("unpause", "plain-up"))
    ok(late.docker("restart", "-t", "0", "plain-up"))
    wait_running(d, "plain-up")


def test_docker_cp_through_a_sensitive_bind_is_refused_both_ways(late, tmp_path):
    """dockerd mounts the container's binds to copy: `docker cp` into a container binding
    /etc would write the host's /etc, out of it read /etc/shadow."""
    probe = tmp_path / "dg-probe"
    probe.write_text("probe\n")
    refused(late.docker("cp", str(probe), "etcbind:/x/dg-probe"), "sensitive-mount")
    assert not Path("/etc/dg-probe").exists()
    refused(late.docker("cp", "etcbind:/x/hostname", str(tmp_path / "out")), "sensitive-mount")
    assert not (tmp_path / "out").exists()
    # a copy does not care about the pid namespace; the benign bind twin copies both ways
    ok(late.docker("cp", str(probe), "pidhost:/tmp/"))
    ok(late.docker("cp", str(probe), "okbind:/ok/"))
    assert (late.src / "ok" / "dg-probe").read_text() == "probe\n"
    ok(late.docker("cp", "okbind:/ok/dg-probe", str(tmp_path / "back")))
    assert (tmp_path / "back").read_text() == "probe\n"


def test_every_refusal_is_in_the_audit_log_with_the_container(late):
    late.docker("start", "etcbind")
    lines = [json.loads(x) for x in late.plugin.log_path.read_text(errors="replace").splitlines()
             if x.startswith("{") and '"decision"' in x]
    hits = [x for x in lines if x["action"] == "container.start" and x["container"] == "etcbind"
            and x["decision"] == "deny"]
    assert hits and "sensitive-mount" in hits[-1]["rule"], lines[-3:]


def test_a_bind_source_swapped_after_create_is_refused_at_start(late):
    """Issue 7 hole 8 at the API: allowed at create (a plain directory), swapped for a
    symlink to /etc, refused at the next start with where it points now."""
    swap = late.src / "swap"
    ok(late.docker("create", "--name", "swapme", "--stop-timeout", "1", "-v", f"{swap}:/x",
                   "busybox", "sleep", "600"))
    ok(late.docker("start", "swapme"))
    ok(late.docker("stop", "-t", "0", "swapme"))
    swap.rmdir()
    swap.symlink_to("/etc")
    try:
        msg = refused(late.docker("start", "swapme"), "sensitive-mount")
        assert f"bind source {swap} now resolves to /etc" in msg, msg
        assert not state(late.daemon, "swapme")["State"]["Running"]
        refused(late.docker("cp", "swapme:/x/hostname", "-"), "sensitive-mount")
    finally:
        swap.unlink()
        swap.mkdir()
    ok(late.docker("start", "swapme"))  # back to a plain directory: allowed again
    ok(late.docker("stop", "-t", "0", "swapme"))


def test_new_creates_of_the_same_are_refused_as_before(late):
    for _name, opts, rule in VIOLATING:
        r = late.docker("create", *opts, "busybox", "true")
        assert DENIED in r.stderr and f"[{rule}]" in r.stderr, r.stderr
        assert "existing container" not in r.stderr


# ---- point 3: preflight and the install gate ----

def dockguard(*args, timeout=120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("DOCKER_HOST", None)
    return subprocess.run([sys.executable, "-m", "dockguard.cli", *args], capture_output=True,
                           text=True, timeout=timeout, env=env)


def restart_policy(d: PrivateDaemon, name: str) -> str:
    return state(d, name)["HostConfig"]["RestartPolicy"]["Name"]


@pytest.fixture(scope="module")
def before_install(daemon_factory):
    """An unguarded daemon with plain-runc containers, as a host has them before install."""
    d = daemon_factory()
    ok(d.docker("run", "-d", "--name", "bootpid", "--restart", "always", "--stop-timeout", "1",
                "--pid", "host", "busybox", "sleep", "600"))
    ok(d.docker("create", "--name", "bootetc", "--restart", "unless-stopped", "-v", "/etc:/x",
                "busybox", "true"))
    ok(d.docker("create", "--name", "bootok", "--restart", "always", "busybox", "sleep", "600"))
    ok(d.docker("create", "--name", "idlepriv", "--privileged", "busybox", "true"))
    return d


def test_preflight_lists_what_would_start_at_boot_unjudged(before_install):
    d = before_install
    r = dockguard("preflight", "--docker-host", d.host, "--json")
    assert r.returncode == 1, (r.stdout, r.stderr)
    report = json.loads(r.stdout)
    got = {c["name"]: c for c in report["containers"]}
    assert set(got) == {"bootpid", "bootetc", "idlepriv"}  # the benign bootok is not listed
    assert got["bootpid"]["blocking"] and got["bootpid"]["runtime"] == "runc"
    assert "host-namespace" in [f["rule"] for f in got["bootpid"]["findings"]]
    assert got["bootetc"]["blocking"] and got["bootetc"]["restart"] == "unless-stopped"
    assert any("/etc" in p for f in got["bootetc"]["findings"] for p in f["problems"])
    assert not got["idlepriv"]["blocking"]  # no restart policy: the plugin refuses its start
    assert report["blocking"] == 2
    text = dockguard("preflight", "--docker-host", d.host)
    assert text.returncode == 1
    assert "bootpid" in text.stdout and "WOULD START AT BOOT UNJUDGED" in text.stdout
    assert "[host-namespace] --pid host" in text.stdout
    assert "docker update --restart=no bootpid" in text.stdout
    r = dockguard("preflight", "--docker-host", d.host, "--accept", "bootpid", "--accept", "bootetc")
    assert r.returncode == 0, r.stdout


def test_preflight_cannot_check_exits_2(tmp_path):
    r = dockguard("preflight", "--docker-host", f"unix://{tmp_path}/none.sock")
    assert r.returncode == 2 and "cannot check" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_install_does_not_finish_while_they_exist(before_install, tmp_path):
    d = before_install
    root = tmp_path / "r1"
    r = dockguard("install", "--root", str(root), "--docker-host", d.host)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "bootpid" in r.stderr and "bootetc" in r.stderr and "nothing was installed" in r.stderr
    assert "--disarm-restart" in r.stderr and "--accept-container" in r.stderr
    assert not (root / "etc/docker/plugins/dockguard.spec").exists()
    # accepted by name: install goes on, their restart policies untouched
    r = dockguard("install", "--root", str(root), "--docker-host", d.host,
                  "--accept-container", "bootpid", "--accept-container", "bootetc")
    assert r.returncode == 0, r.stderr
    assert (root / "etc/docker/plugins/dockguard.spec").exists()
    assert restart_policy(d, "bootpid") == "always" and restart_policy(d, "bootetc") == "unless-stopped"


def test_preflight_reads_dockerds_records_when_it_does_not_answer(before_install):
    d = before_install
    d.stop()
    try:
        r = dockguard("preflight", "--docker-host", f"unix://{d.base}/gone.sock",
                      "--docker-root", str(d.data_root), "--json")
        assert r.returncode == 1, (r.stdout, r.stderr)
        report = json.loads(r.stdout)
        assert "records" in report["source"]
        got = {c["name"]: c for c in report["containers"]}
        assert got["bootpid"]["blocking"] and got["bootetc"]["blocking"] and not got["idlepriv"]["blocking"]
        assert "bootok" not in got
    finally:
        d.start()


def test_install_disarm_restart_turns_their_restart_policy_off(before_install, tmp_path):
    d = before_install
    r = dockguard("install", "--root", str(tmp_path / "r2"), "--docker-host", d.host, "--disarm-restart")
    assert r.returncode == 0, r.stderr
    assert "restart policy turned off" in r.stderr
    assert restart_policy(d, "bootpid") == "no" and restart_policy(d, "bootetc") == "no"
    assert restart_policy(d, "bootok") == "always"  # benign: left alone
    r = dockguard("preflight", "--docker-host", d.host)
    assert r.returncode == 0, r.stdout


def test_staged_install_without_a_daemon_checks_nothing_and_says_so(tmp_path):
    r = dockguard("install", "--root", str(tmp_path / "r3"))
    assert r.returncode == 0, r.stderr
    assert "no daemon's containers checked" in r.stderr
