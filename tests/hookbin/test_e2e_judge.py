"""Issue 14 points 2-4 and issue 7 hole 8, on a private dockerd: two lines of defence.

The plugin guards the API with a policy that sets EVERY rule to audit (so it refuses
nothing); the daemon's default runtime is dockguard-runtime with the default rules. Every
violating container of the set is created through the API (the plugin audits it) and
refused at start by the runtime alone, with the rule's id and "Safely:" hint in the error;
each benign twin runs. A restart-always container that violates the runtime's policy does
not come back after a daemon restart; a bind source swapped for a symlink to /etc after
create is refused at `docker start` and at a restart-policy restart, while a directory that
stays a directory keeps restarting.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest

from authz.rules import all_rules
from dockguard.harness.daemon import _UnixHTTPConnection
from hookbin import install

from ..conftest import short_tmpdir
from .conftest import require_dockerd, trusted_tmpdir, write_root_file

pytestmark = pytest.mark.docker

RUNTIME = "dockguard-runtime: refused"


class TwoLines:
    def __init__(self, g, base: Path):
        self.g = g
        self.d = g.daemon
        self.base = base
        self.runtime_policy = base / "runtime-policy.toml"

    def docker(self, *args, **kw):
        return self.d.docker(*args, **kw)

    def set_runtime_rules(self, rules: dict) -> None:
        write_root_file(self.runtime_policy, "[rules]\n" + "".join(f'{k} = "{v}"\n' for k, v in rules.items()))

    def refused_at_start(self, *run_args: str, rule: str) -> str:
        """`docker run` of a container the plugin lets through (audit) and the runtime refuses."""
        name = "v" + uuid.uuid4().hex[:8]
        res = self.docker("run", "--name", name, *run_args)
        assert res.returncode != 0, f"{run_args} ran: {res.stdout}"
        err = res.stderr
        assert "authorization denied" not in err, f"the plugin (audit only) refused it: {err}"
        assert RUNTIME in err and f"[{rule}]" in err and "Safely:" in err, err
        state = json.loads(self.docker("inspect", name, check=True).stdout)[0]["State"]
        assert not state["Running"] and state["StartedAt"].startswith("0001"), "never started"
        self.audited(name)
        return err

    def runs(self, *run_args: str) -> str:
        res = self.docker("run", "--rm", *run_args)
        assert res.returncode == 0, f"benign twin {run_args} failed: {res.stderr}"
        return res.stdout

    def audited(self, name: str) -> None:
        lines = [r for r in self.g.audit_lines() if r.get("action") == "container.create"
                 and r.get("container") == name]
        assert lines and lines[-1]["decision"] in ("audit", "allow"), lines


@pytest.fixture(scope="module")
def two(guarded_factory):
    require_dockerd()
    base = trusted_tmpdir("dgj")
    root = base / "root"
    root.mkdir(mode=0o755)
    audit_all = write_root_file(base / "plugin-policy.toml",
                                "[rules]\n" + "".join(f'{r} = "audit"\n' for r in sorted(all_rules())))
    runtime = install.install_runtime(str(base / "bin"), docker_root=str(root))
    policy = write_root_file(base / "runtime-policy.toml", "")  # the default rules (deny)
    g = guarded_factory(policy=str(audit_all), base=base, default_runtime="dockguard",
                        runtimes={"dockguard": install.runtime_config(runtime, str(root), policy=str(policy))})
    yield TwoLines(g, base)


@pytest.fixture
def tmp_dir():
    d = short_tmpdir("dgjd")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# --- point 4: the runtime alone refuses each violating container, each twin runs ----------

@pytest.mark.parametrize("args, rule", [
    (["--pid", "host"], "host-namespace"),
    (["--ipc", "host"], "host-namespace"),
    (["--uts", "host"], "host-namespace"),
    (["--net", "host"], "host-namespace"),
    (["--cap-add", "SYS_ADMIN"], "dangerous-capability"),
    (["--cap-add", "ALL"], "dangerous-capability"),
    (["--security-opt", "seccomp=unconfined"], "seccomp-unconfined"),
    (["--security-opt", "systempaths=unconfined"], "writable-proc-sys"),
    (["-v", "/etc:/x"], "sensitive-mount"),
    (["--mount", "type=bind,source=/,target=/x"], "sensitive-mount"),
    (["--device", "/dev/kmsg"], "sensitive-device"),
    (["--device-cgroup-rule", "c 1:* rwm"], "device-cgroup-rule"),
    (["--device-cgroup-rule", "b 254:0 rwm"], "device-cgroup-rule"),
])
def test_runtime_alone_refuses(two, args, rule):
    two.refused_at_start(*args, "busybox", "true", rule=rule)


def test_runtime_refuses_privileged_with_its_own_message(two):
    """--privileged cannot start on this host anyway (CAP_SYS_RESOURCE is missing from its
    bounding set): the error must be the runtime's refusal, before runc tries."""
    err = two.refused_at_start("--privileged", "busybox", "true", rule="privileged")
    assert "[dangerous-capability]" in err and "[seccomp-unconfined]" in err


@pytest.mark.parametrize("opts", [
    ["--opt", "type=none", "--opt", "o=bind", "--opt", "device=/etc"],
    ["--opt", "type=proc", "--opt", "device=proc"],
    ["--opt", "type=sysfs", "--opt", "device=sysfs"],
    ["--opt", "type=overlay", "--opt", "device=overlay", "--opt", "o=lowerdir=/etc:/usr"],
    ["--opt", "type=ext4", "--opt", "device=/dev/vda"],
])
def test_runtime_refuses_what_a_volume_mounts(two, opts):
    if "device=/dev/vda" in opts and not os.path.exists("/dev/vda"):
        opts = [o.replace("/dev/vda", _root_device()) for o in opts]
    name = "vol" + uuid.uuid4().hex[:8]
    two.docker("volume", "create", *opts, name, check=True)
    try:
        two.refused_at_start("-v", f"{name}:/v", "busybox", "ls", "/v", rule="sensitive-mount")
    finally:
        two.docker("container", "prune", "-f")
        two.docker("volume", "rm", "-f", name)


def _root_device() -> str:
    for line in open("/proc/self/mountinfo"):
        f = line.split(" - ")
        if f[0].split()[4] == "/":
            return f[1].split()[1]
    raise AssertionError("no root mount")


def test_init_binary_runs_and_a_lookalike_does_not(two, tmp_dir):
    two.runs("--init", "busybox", "true")
    fake = tmp_dir / "docker-init"
    fake.symlink_to("/etc/shadow")
    two.refused_at_start("-v", f"{fake}:/sbin/docker-init:ro", "busybox", "true", rule="sensitive-mount")


@pytest.mark.engine(min_api="1.45", reason="--mount volume-subpath is new in Docker 26")
def test_volume_subpath_judged_by_what_it_shows(two):
    """dockerd 26 binds a volume's subpath on a "safe mount" under its root: a plain volume's
    subdirectory runs, a subpath of a volume that binds /etc (or of a proc volume) does not."""
    two.docker("volume", "create", "subok", check=True)
    two.runs("-v", "subok:/v", "busybox", "mkdir", "-p", "/v/sub")
    two.runs("--mount", "type=volume,src=subok,dst=/v,volume-subpath=sub", "busybox", "true")
    two.docker("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=/etc",
               "subetc", check=True)
    err = two.refused_at_start("--mount", "type=volume,src=subetc,dst=/v,volume-subpath=ssl",
                               "busybox", "ls", "/v", rule="sensitive-mount")
    assert "volume subpath /etc/ssl:/v" in err
    two.docker("container", "prune", "-f")
    two.docker("volume", "rm", "-f", "subok", "subetc")


def test_kernel_memory_through_a_raw_v141_request(two):
    """CLIs >= 23 never send KernelMemory to API >= 1.42, so a raw v1.41 request."""
    body = json.dumps({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"KernelMemory": 16 << 20}})
    name = "km" + uuid.uuid4().hex[:8]
    conn = _UnixHTTPConnection(str(two.d.socket), 60)
    conn.request("POST", f"/v1.41/containers/create?name={name}", body=body,
                 headers={"Host": "docker", "Content-Type": "application/json"})
    resp = conn.getresponse()
    created = resp.read()
    assert resp.status == 201, created
    kept = json.loads(two.docker("inspect", name, check=True).stdout)[0]["HostConfig"].get("KernelMemory")
    res = two.docker("start", name)
    if kept:
        assert res.returncode != 0 and RUNTIME in res.stderr and "[kernel-memory]" in res.stderr, res.stderr
    else:  # dockerd >= 25 drops the field: nothing reaches the runtime, and nothing is set
        assert res.returncode == 0, res.stderr


def test_benign_twins_run(two, tmp_dir):
    assert two.runs("busybox", "echo", "ok").strip() == "ok"
    two.runs("--cap-add", "NET_BIND_SERVICE", "--cap-drop", "CHOWN", "busybox", "true")
    two.runs("--device", "/dev/zero:/dev/z", "--device-cgroup-rule", "c 10:200 rwm", "busybox", "true")
    two.runs("--memory", "64m", "--tmpfs", "/scratch", "busybox", "true")
    (tmp_dir / "f").write_text("data")
    assert two.runs("-v", f"{tmp_dir}:/d:ro", "busybox", "cat", "/d/f") == "data"
    two.runs("-v", "plainvol:/v", "busybox", "touch", "/v/x")
    two.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "tmpvol", check=True)
    two.runs("-v", "tmpvol:/t", "busybox", "touch", "/t/x")
    # a container sharing another container's namespaces is not the host's
    two.docker("run", "-d", "--name", "peer", "--ipc", "shareable", "busybox", "sleep", "60", check=True)
    try:
        two.runs("--net", "container:peer", "--pid", "container:peer", "--ipc", "container:peer", "busybox", "true")
    finally:
        two.docker("rm", "-f", "peer")


def test_plugin_audited_what_the_runtime_refused(two):
    """The request did pass the plugin (audit): the refusal above is the runtime's alone."""
    name = "aud" + uuid.uuid4().hex[:8]
    two.docker("create", "--name", name, "--pid", "host", "busybox", "true", check=True)
    rec = [r for r in two.g.audit_lines() if r.get("container") == name and r.get("action") == "container.create"]
    assert rec and rec[-1]["decision"] == "audit" and "host-namespace" in rec[-1]["rule"], rec
    res = two.docker("start", name)
    assert res.returncode != 0 and "[host-namespace]" in res.stderr


def test_runtime_audit_level_allows_and_logs(two):
    two.set_runtime_rules({"host-namespace": "audit"})
    try:
        assert two.runs("--uts", "host", "busybox", "hostname").strip() == os.uname().nodename
    finally:
        two.set_runtime_rules({})
    two.refused_at_start("--uts", "host", "busybox", "true", rule="host-namespace")


def test_a_policy_that_cannot_be_read_refuses_every_start(two):
    write_root_file(two.runtime_policy, "[rules\n")
    try:
        res = two.docker("run", "--rm", "busybox", "true")
        assert res.returncode != 0 and "policy cannot be used" in res.stderr, res.stderr
    finally:
        two.set_runtime_rules({})
    two.runs("busybox", "true")


# --- restarts that never pass through the API ---------------------------------------------

def state(two, name) -> dict:
    return json.loads(two.docker("inspect", name, check=True).stdout)[0]["State"]


def test_restart_always_violator_does_not_come_back_after_a_daemon_restart(two):
    two.set_runtime_rules({"host-namespace": "off"})
    try:
        two.docker("run", "-d", "--name", "boot", "--restart", "always", "--pid", "host",
                   "busybox", "sleep", "600", check=True)
        assert state(two, "boot")["Running"]
    finally:
        two.set_runtime_rules({})  # the rule back on: the next start must be refused
    two.d.restart()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = state(two, "boot")
        if "dockguard-runtime" in (st.get("Error") or ""):
            break
        time.sleep(0.5)
    time.sleep(2)
    st = state(two, "boot")
    assert not st["Running"], st
    assert "[host-namespace]" in st["Error"], st
    two.docker("rm", "-f", "boot")


def test_hole8_swapped_bind_is_refused_at_docker_start(two, tmp_dir):
    x = tmp_dir / "x"
    x.mkdir()
    two.docker("create", "--name", "swap", "-v", f"{x}:/x", "busybox", "cat", "/x/shadow", check=True)
    x.rmdir()
    x.symlink_to("/etc")
    res = two.docker("start", "-a", "swap")
    assert res.returncode != 0 and "root:" not in res.stdout
    assert RUNTIME in res.stderr and "[sensitive-mount]" in res.stderr and "-> /etc:/x" in res.stderr, res.stderr
    two.docker("rm", "-f", "swap")


def test_hole8_swapped_bind_is_refused_at_a_restart_policy_restart(two, tmp_dir):
    y = tmp_dir / "y"
    y.mkdir()
    two.docker("run", "-d", "--name", "loop", "--restart", "always", "-v", f"{y}:/y", "busybox",
               "sh", "-c", "test -e /y/passwd && echo LEAK; sleep 1", check=True)
    time.sleep(1.5)
    y.rmdir()
    y.symlink_to("/etc")
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        st = state(two, "loop")
        if "dockguard-runtime" in (st.get("Error") or ""):
            break
        time.sleep(0.5)
    st = state(two, "loop")
    logs = two.docker("logs", "loop").stdout
    two.docker("rm", "-f", "loop")
    assert "LEAK" not in logs, "a start ran with /etc at /y"
    # a restart judged after the swap is refused as /etc; one between the rmdir and the
    # symlink as a source that does not exist; one that pinned y before the rmdir and reached
    # runc's mount after it as a removed source (dockerd stops restarting after a failed
    # start): each in the runtime's words, never runc's about a staging path
    err = st["Error"]
    assert (("[sensitive-mount]" in err and "-> /etc" in err)
            or f"{RUNTIME}: bind source {y} for /y does not exist" in err
            or f"{RUNTIME}: bind source {y} for /y was removed after it was judged" in err), st
    assert "/run/dockguard/pins" not in err, st


def test_a_directory_that_stays_a_directory_restarts(two, tmp_dir):
    z = tmp_dir / "z"
    z.mkdir()
    two.docker("run", "-d", "--name", "keeps", "--restart", "always", "-v", f"{z}:/z", "busybox",
               "sh", "-c", "echo run >> /z/count; sleep 1", check=True)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len((z / "count").read_text().split()) < 3:
        time.sleep(0.5)
    runs = len((z / "count").read_text().split())
    st = state(two, "keeps")
    two.docker("rm", "-f", "keeps")
    assert runs >= 3 and not st.get("Error"), (runs, st)


def test_a_source_removed_at_random_times_is_never_a_raw_runc_error(two, tmp_dir):
    """The source of a restarting container removed and put back at random moments (so some
    land between the runtime's pinning and runc's mount, where the kernel refuses to bind a
    removed directory): every start either runs or is the runtime's clear refusal naming the
    source, never runc's error about a staging path."""
    import random
    import threading
    w = tmp_dir / "w"
    w.mkdir()
    two.docker("run", "-d", "--name", "flaky", "--restart", "always", "-v", f"{w}:/w", "busybox",
               "sh", "-c", "sleep 0.2", check=True)
    stop = threading.Event()

    def churn():
        rnd = random.Random(8)
        while not stop.is_set():
            try:
                w.rmdir()
            except OSError:
                pass
            time.sleep(rnd.uniform(0, 0.3))
            w.mkdir(exist_ok=True)
            time.sleep(rnd.uniform(0, 0.3))

    t = threading.Thread(target=churn, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not state(two, "flaky").get("Error"):
            time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    st = state(two, "flaky")
    two.docker("rm", "-f", "flaky")
    err = st.get("Error") or ""
    assert err, f"no start landed in the window in 60 s: {st}"
    assert "dockguard-runtime: refused" in err and f"bind source {w}" in err, st
    assert "/run/dockguard/pins" not in err, st
