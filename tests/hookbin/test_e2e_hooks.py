"""dockguard-runtime and the hook programs on a private dockerd 20.10 + real runc."""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

from hookbin import spec as hs

from .conftest import hook, require_lxcfs

pytestmark = pytest.mark.docker


def records(path, container_id: str, timeout: float = 5.0, want: int = 0) -> list[tuple[str, dict]]:
    """Lines "TAG <state json>" written by the record hook for one container."""
    deadline = time.monotonic() + timeout
    while True:
        out = []
        if os.path.exists(path):
            for line in open(path):
                tag, _, state = line.rstrip("\n").partition(" ")
                state = json.loads(state)
                if state["id"] == container_id:
                    out.append((tag, state))
        if len(out) >= want or time.monotonic() > deadline:
            return out
        time.sleep(0.1)


def run_to_exit(hd, runtime: str, *args: str) -> str:
    """create, start -a, rm: returns the container id (poststop runs on runc delete)."""
    res = hd.d.docker("create", "--runtime", runtime, *args)
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    start = hd.d.docker("start", "-a", cid)
    assert start.returncode == 0, start.stderr
    hd.d.docker("rm", cid)
    return cid


def test_daemon_wide_then_container_specs_in_file_order(hd_log, hook_daemon):
    hd, log = hook_daemon, hd_log
    rec = hd.hooks / "record"
    a = hd.spec("order-a", prestart=[hook(rec, "a1", log), hook(rec, "a2", log)], poststop=[hook(rec, "a-stop", log)])
    b = hd.spec("order-b", prestart=[hook(rec, "b1", log)], poststart=[hook(rec, "b-start", log)])
    cid = run_to_exit(hd, "dgwide", "--label", f"{hs.LABEL}={a},{b}", "busybox", "true")
    wide = records(hd.wide_log, cid, want=2)
    assert [t for t, _ in wide] == ["wide-pre", "wide-stop"]
    mine = records(log, cid, want=5)
    assert [t for t, _ in mine] == ["a1", "a2", "b1", "b-start", "a-stop"]
    pre = wide[0][1]
    assert pre["status"] == "creating" and pre["pid"] > 0 and pre["bundle"].endswith(cid)
    assert dict(mine)["a-stop"]["status"] == "stopped"


def test_daemon_wide_runs_before_container_prestart(hd_log, hook_daemon):
    """Both record into the same log here, so the order between them is observable."""
    hd, log = hook_daemon, hd_log
    c = hd.spec("order-c", prestart=[hook(hd.hooks / "record", "c1", hd.wide_log)])
    cid = run_to_exit(hd, "dgwide", "--label", f"{hs.LABEL}={c}", "busybox", "true")
    assert [t for t, _ in records(hd.wide_log, cid, want=3)] == ["wide-pre", "c1", "wide-stop"]


def test_hook_gets_state_and_poststop_runs_after_exit(hd_log, hook_daemon):
    hd, log = hook_daemon, hd_log
    rec = hd.hooks / "record"
    spec = hd.spec("state", prestart=[hook(rec, "pre", log)], poststop=[hook(rec, "stop", log)])
    res = hd.d.docker("run", "-d", "--label", f"{hs.LABEL}={spec}", "busybox", "sleep", "1")
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    pre = records(log, cid, want=1)
    assert [t for t, _ in pre] == ["pre"]
    state = pre[0][1]
    assert state["id"] == cid and state["pid"] > 0 and state["status"] == "creating"
    assert state["bundle"].endswith(cid) and state["ociVersion"]
    assert hd.d.docker("wait", cid).stdout.strip() == "0"
    after = records(log, cid, want=2)
    assert [t for t, _ in after] == ["pre", "stop"]
    assert after[1][1]["status"] == "stopped"
    hd.d.docker("rm", cid)


def test_each_start_runs_the_hooks_once(hd_log, hook_daemon):
    """A fresh bundle per start: restarting must not accumulate hooks."""
    hd, log = hook_daemon, hd_log
    spec = hd.spec("restart", prestart=[hook(hd.hooks / "record", "pre", log)])
    res = hd.d.docker("create", "--label", f"{hs.LABEL}={spec}", "busybox", "true")
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    for _ in range(2):
        assert hd.d.docker("start", "-a", cid).returncode == 0
    hd.d.docker("rm", cid)
    assert [t for t, _ in records(log, cid, want=2)] == ["pre", "pre"]


def test_installed_recorder_logs_each_phase(tmp_path, hook_daemon):
    hd = hook_daemon
    log = hd.logs / f"rec-{uuid.uuid4().hex[:8]}.log"
    prog = hd.hooks / "docker-hooks"
    spec = hd.spec("recorder", **{p: [{"path": str(prog), "args": ["docker-hooks", "--state", p, "--log", str(log)],
                                       "env": [], "timeout": 5}] for p in hs.PHASES})
    cid = run_to_exit(hd, "dgplain", "--label", f"{hs.LABEL}={spec}", "busybox", "true")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.1)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(x["id"], x["state"]) for x in lines] == [(cid, "prestart"), (cid, "poststart"), (cid, "poststop")]
    assert lines[0]["pid"] > 0 and lines[2]["status"] == "stopped"


def test_failing_prestart_fails_run_with_hook_stderr(hook_daemon):
    hd = hook_daemon
    spec = hd.spec("fail", prestart=[hook(hd.hooks / "fail", "prestart-check", timeout=5)])
    name = f"dgfail-{uuid.uuid4().hex[:8]}"
    res = hd.d.docker("run", "--rm", "--name", name, "--label", f"{hs.LABEL}={spec}", "busybox", "true")
    assert res.returncode != 0
    assert "boom from hook: prestart-check" in res.stderr
    assert hd.d.docker("ps", "-aq", "--filter", f"name={name}").stdout.strip() == ""


def test_hook_past_timeout_is_killed_and_fails_start(hook_daemon):
    hd = hook_daemon
    spec = hd.spec("slow", prestart=[hook(hd.hooks / "sleepy", timeout=1)])
    t0 = time.monotonic()
    res = hd.d.docker("run", "--rm", "--label", f"{hs.LABEL}={spec}", "busybox", "true")
    elapsed = time.monotonic() - t0
    assert res.returncode != 0
    assert "sleepy ran past its timeout of 1s: killed with its process group" in res.stderr, res.stderr
    assert elapsed < 15, f"hook was not killed at its 1 s timeout ({elapsed:.1f}s)"
    assert not subprocess.run(["pgrep", "-f", "^/bin/sleep 30$"], capture_output=True).stdout


INVALID = {
    "timeout 0": ({"timeout": 0}, "prestart[0].timeout: 0 is out of range [1, 120]"),
    "timeout 121": ({"timeout": 121}, "prestart[0].timeout: 121 is out of range [1, 120]"),
    "timeout 1.5": ({"timeout": 1.5}, "prestart[0].timeout: must be an integer in [1, 120] (got a float: 1.5)"),
    'timeout "5"': ({"timeout": "5"}, 'prestart[0].timeout: must be an integer in [1, 120] (got a string: "5")'),
    "missing path": ({"path": None}, "prestart[0].path: missing"),
    "missing args": ({"args": None}, "prestart[0].args: missing"),
    "missing env": ({"env": None}, "prestart[0].env: missing"),
    "relative path": ({"path": "hooks/record"}, "prestart[0].path: 'hooks/record' is not an absolute path"),
    "symlink escaping": ({"path": "@hooks/escape"}, "is outside the hooks directory"),
    "hooksX sibling": ({"path": "@root/hooksX/record"}, "is outside the hooks directory"),
    "non-executable": ({"path": "@hooks/noexec"}, "is not executable (mode 0644)"),
}


@pytest.fixture(scope="module")
def bad_programs(hook_daemon):
    hd = hook_daemon
    if not os.path.lexists(hd.hooks / "escape"):
        os.symlink("/bin/true", hd.hooks / "escape")
    (hd.root / "hooksX").mkdir(exist_ok=True)
    for p in (hd.root / "hooksX" / "record", hd.hooks / "noexec"):
        p.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(hd.root / "hooksX" / "record", 0o755)
    os.chmod(hd.hooks / "noexec", 0o644)
    return hd


def assert_refused(hd, name: str, spec_or_label: str, fault: str, runtime: str = "dgplain"):
    res = hd.d.docker("run", "--rm", "--runtime", runtime, "--name", name,
                      "--label", f"{hs.LABEL}={spec_or_label}", "busybox", "true")
    assert res.returncode != 0
    assert "dockguard-runtime: hook-spec refused" in res.stderr, res.stderr
    assert fault in res.stderr, res.stderr
    assert hd.d.docker("ps", "-aq", "--filter", f"name={name}").stdout.strip() == "", "container left behind"
    assert hd.runc_list() == [], "runc state left behind"


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_spec_refused_at_create_and_nothing_left(bad_programs, case):
    hd = bad_programs
    over, fault = INVALID[case]
    h = {"path": str(hd.hooks / "record"), "args": ["record"], "env": [], "timeout": 5}
    for key, value in over.items():
        if value is None:
            del h[key]
        elif isinstance(value, str) and value.startswith("@"):
            h[key] = str(hd.hooks / value[7:]) if value.startswith("@hooks/") else str(hd.root / value[6:])
        else:
            h[key] = value
    spec = hd.spec("bad-" + uuid.uuid4().hex[:8], prestart=[h])
    assert_refused(hd, f"dgbad-{uuid.uuid4().hex[:8]}", spec, fault)


def test_bad_json_refused_with_line_and_column(hook_daemon):
    hd = hook_daemon
    path = hd.specs / "badjson.json"
    path.write_text('{"prestart": [\n  {"path": "/x" "args": []}\n]}\n')
    assert_refused(hd, f"dgbad-{uuid.uuid4().hex[:8]}", str(path), f"{path}:2:17: invalid JSON")


def test_invalid_daemon_wide_spec_refuses_every_container(hook_daemon):
    hd = hook_daemon
    name = f"dgbad-{uuid.uuid4().hex[:8]}"
    res = hd.d.docker("run", "--rm", "--runtime", "dgbadwide", "--name", name, "busybox", "true")
    assert res.returncode != 0
    assert "badwide.json: prestart[0].timeout: 0 is out of range" in res.stderr, res.stderr
    assert hd.d.docker("ps", "-aq", "--filter", f"name={name}").stdout.strip() == ""


def test_container_without_spec_runs_normally_through_the_wrapper(hook_daemon):
    res = hook_daemon.d.docker("run", "--rm", "busybox", "echo", "plain")
    assert res.returncode == 0 and res.stdout == "plain\n", res.stderr


# --- network-hook -------------------------------------------------------------------------

@pytest.fixture
def host_link(hook_daemon):
    """A host interface to hand over (dummy if the kernel has it, else one end of a veth),
    listed in the policy's network_interfaces while the test runs."""
    tag = uuid.uuid4().hex[:6]
    name, peer = f"dga{tag}", f"dgb{tag}"
    made = subprocess.run(hook_daemon.d.netns_argv("ip", "link", "add", name, "type", "dummy"), capture_output=True)
    if made.returncode != 0:
        subprocess.run(hook_daemon.d.netns_argv("ip", "link", "add", name, "type", "veth", "peer", "name", peer), check=True)
    hook_daemon.set_policy(network_interfaces=[name])
    yield name
    hook_daemon.set_policy()
    for n in (name, peer):
        subprocess.run(hook_daemon.d.netns_argv("ip", "link", "del", n), capture_output=True)


def link_exists(name: str, daemon) -> bool:
    """Is the link in the daemon's own netns (network-hook's "host"; tests never touch the
    real host's links), or on the host (daemon None)?"""
    argv = daemon.netns_argv("ip", "link", "show", name) if daemon else ["ip", "link", "show", name]
    return subprocess.run(argv, capture_output=True).returncode == 0


def test_network_hook_moves_interface_into_container(hook_daemon, host_link):
    hd = hook_daemon
    prog = hd.hooks / "network-hook"
    spec = hd.spec("net-" + host_link, prestart=[{"path": str(prog), "args": ["network-hook", host_link, "myTap"],
                                                  "env": [], "timeout": 5}],
                   poststop=[{"path": str(prog), "args": ["network-hook", host_link, "myTap"], "env": []}])
    res = hd.d.docker("run", "--rm", "--network", "none", "--label", f"{hs.LABEL}={spec}",
                      "busybox", "ip", "-o", "link", "show", "myTap")
    assert res.returncode == 0, res.stderr
    assert ": myTap" in res.stdout and ",UP" in res.stdout, res.stdout
    # A virtual interface goes away with the container's netns (documented, by design).
    deadline = time.monotonic() + 5
    while link_exists(host_link, hd.d) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not link_exists(host_link, hd.d)


def test_network_hook_left_host_side_while_running(hook_daemon, host_link):
    hd = hook_daemon
    spec = hd.spec("net2-" + host_link, prestart=[{"path": str(hd.hooks / "network-hook"),
                                                   "args": ["network-hook", host_link, "eth9"], "env": []}])
    res = hd.d.docker("run", "-d", "--network", "none", "--label", f"{hs.LABEL}={spec}", "busybox", "sleep", "30")
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    try:
        assert not link_exists(host_link, hd.d), "interface still on the host"
        inside = hd.d.docker("exec", cid, "ip", "-o", "link")
        assert ": eth9" in inside.stdout, inside.stdout
    finally:
        hd.d.docker("rm", "-f", cid)


def test_network_hook_missing_interface_fails_start(hook_daemon):
    hd = hook_daemon
    spec = hd.spec("net-missing", prestart=[{"path": str(hd.hooks / "network-hook"),
                                              "args": ["network-hook", "dgnope0", "x0"], "env": []}])
    hd.set_policy(network_interfaces=["dgnope0"])  # listed, but not on this host
    try:
        res = hd.d.docker("run", "--rm", "--network", "none", "--label", f"{hs.LABEL}={spec}", "busybox", "true")
    finally:
        hd.set_policy()
    assert res.returncode != 0
    assert "network-hook: host interface 'dgnope0' not found" in res.stderr, res.stderr


# --- lxcfs-hook ---------------------------------------------------------------------------

def test_lxcfs_hook_shows_container_memory_limit(hook_daemon):
    require_lxcfs()
    hd = hook_daemon
    log = hd.logs / "lxcfs-hook.log"
    spec = hd.spec("lxcfs", prestart=[{"path": str(hd.hooks / "lxcfs-hook"),
                                       "args": ["lxcfs-hook", "--log", str(log)], "env": [], "timeout": 5}])
    res = hd.d.docker("run", "--rm", "-m", "64m", "--label", f"{hs.LABEL}={spec}", "busybox", "head", "-1", "/proc/meminfo")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["MemTotal:", "65536", "kB"], res.stdout
    event = json.loads(log.read_text().splitlines()[-1])
    assert "meminfo" in event["mounted"]
    plain = hd.d.docker("run", "--rm", "-m", "64m", "busybox", "head", "-1", "/proc/meminfo")
    assert plain.stdout.split()[1] != "65536", "without the hook the host's memory shows"


def test_lxcfs_hook_clear_error_without_lxcfs(hook_daemon):
    hd = hook_daemon
    spec = hd.spec("lxcfs-missing", prestart=[{"path": str(hd.hooks / "lxcfs-hook"),
                                               "args": ["lxcfs-hook", "--lxcfs-root", "/nonexistent/lxcfs"], "env": []}])
    res = hd.d.docker("run", "--rm", "--label", f"{hs.LABEL}={spec}", "busybox", "true")
    assert res.returncode != 0
    assert "lxcfs-hook: lxcfs is not running: no lxcfs mount at /nonexistent/lxcfs" in res.stderr, res.stderr


@pytest.fixture
def hd_log(hook_daemon):
    return hook_daemon.base / f"rec-{uuid.uuid4().hex[:8]}.log"
