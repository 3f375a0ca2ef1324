"""The hook programs' pure parts and their error paths, run as installed (no Docker)."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from hookbin import install, netlink, oci
from hookbin.hooks import docker_hooks, lxcfs_hook, network_hook

from .conftest import policy_toml, trusted_tmpdir, write_root_file

STATE = {"ociVersion": "1.0.2", "id": "abc", "status": "creating", "pid": 4242, "bundle": "/run/b/abc"}


def test_parse_state_accepts_runc_state_and_defaults_pid():
    assert oci.parse_state(json.dumps(STATE))["pid"] == 4242
    stopped = {k: v for k, v in STATE.items() if k != "pid"} | {"status": "stopped"}
    assert oci.parse_state(json.dumps(stopped))["pid"] == 0


@pytest.mark.parametrize("text, fault", [
    ("not json", "not valid JSON"),
    ("[]", "not a JSON object"),
    (json.dumps({**STATE, "id": ""}), "lacks 'id'"),
    (json.dumps({k: v for k, v in STATE.items() if k != "bundle"}), "lacks 'bundle'"),
    (json.dumps({**STATE, "pid": "12"}), "bad pid"),
    (json.dumps({**STATE, "pid": True}), "bad pid"),
])
def test_parse_state_refuses(text, fault):
    with pytest.raises(oci.OciError, match=fault):
        oci.parse_state(text)


def test_rootfs_path_relative_to_bundle():
    assert oci.rootfs_path("/b", {"root": {"path": "rootfs"}}) == "/b/rootfs"
    assert oci.rootfs_path("/b", {"root": {"path": "/var/lib/docker/overlay2/x/merged"}}) == "/var/lib/docker/overlay2/x/merged"
    with pytest.raises(oci.OciError, match="no root.path"):
        oci.rootfs_path("/b", {})


def test_write_json_atomic_keeps_mode_and_leaves_no_temp(tmp_path):
    p = tmp_path / "config.json"
    p.write_text("{}")
    os.chmod(p, 0o600)
    oci.write_json_atomic(str(p), {"a": [1, {"b": None}]})
    assert json.loads(p.read_text()) == {"a": [1, {"b": None}]}
    assert os.stat(p).st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["config.json"]


# --- docker-hooks --------------------------------------------------------------------------

def test_recorder_record_is_one_flat_line():
    rec = docker_hooks.record(STATE, "prestart", 1700000000.5)
    assert rec == {"time": "2023-11-14T22:13:20.500000Z", "id": "abc", "state": "prestart",
                   "status": "creating", "pid": 4242, "bundle": "/run/b/abc"}


@pytest.mark.parametrize("argv, fault", [
    ([], "--state must be one of"),
    (["--state", "poststrat"], "--state must be one of"),
    (["--state", "prestart", "--log", "rel.log"], "--log must be an absolute path"),
    (["--state"], "--state needs a value"),
    (["--state", "prestart", "extra"], "unexpected argument 'extra'"),
])
def test_recorder_usage_errors(argv, fault):
    with pytest.raises(ValueError, match=fault):
        docker_hooks.parse_args(argv)


# --- lxcfs-hook ------------------------------------------------------------------------------

MOUNTINFO = """\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
43 27 0:41 / /var/lib/lxcfs rw,nosuid,nodev,relatime - fuse.lxcfs lxcfs rw,user_id=0,group_id=0,allow_other
44 27 0:42 / /var/lib/other rw - fuse.sshfs x rw
"""


def test_lxcfs_mounted_reads_mountinfo():
    assert lxcfs_hook.lxcfs_mounted("/var/lib/lxcfs", MOUNTINFO)
    assert not lxcfs_hook.lxcfs_mounted("/var/lib/other", MOUNTINFO)
    assert not lxcfs_hook.lxcfs_mounted("/var/lib", MOUNTINFO)


def test_lxcfs_args():
    assert lxcfs_hook.parse_args(["--log", "/var/log/l.log"]) == {"log": "/var/log/l.log", "lxcfs-root": "/var/lib/lxcfs"}
    with pytest.raises(ValueError, match="absolute"):
        lxcfs_hook.parse_args(["--log=l.log"])


# --- network-hook -----------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [[], ["eth0"], ["a", "b", "c"], ["eth0", "x" * 16], ["eth0", "a/b"], ["eth0", "a b"]])
def test_network_hook_args_refused(argv):
    with pytest.raises(ValueError):
        network_hook.parse_args(argv)


def test_newlink_message_layout():
    msg = netlink.newlink_message(7, 99, name="myTap", up=True)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", msg)
    assert (length, kind, flags, seq) == (len(msg), netlink.RTM_NEWLINK, netlink.NLM_F_REQUEST | netlink.NLM_F_ACK, 99)
    _family, _type, index, ifflags, change = struct.unpack_from("=BxHiII", msg, 16)
    assert (index, ifflags, change) == (7, netlink.IFF_UP, netlink.IFF_UP)
    alen, atype = struct.unpack_from("=HH", msg, 32)
    assert (alen, atype) == (4 + 6, netlink.IFLA_IFNAME) and msg[36:42] == b"myTap\0"
    assert len(msg) % 4 == 0
    moved = netlink.newlink_message(3, 1, netns_fd=9)
    assert struct.unpack_from("=HHI", moved, 32) == (8, netlink.IFLA_NET_NS_FD, 9)


# --- installed programs: errors on stderr, non-zero exit, fast -------------------------------

class Installed(type(Path())):
    """The hooks dir; .base holds logs/ (the policy's log_dir) and nolxcfs/ (a listed lxcfs root)."""


@pytest.fixture(scope="module")
def installed():
    import shutil
    base = trusted_tmpdir("hu")
    (base / "logs").mkdir(mode=0o755)
    (base / "nolxcfs").mkdir(mode=0o755)
    policy = write_root_file(base / "policy.toml", policy_toml(
        [base / "specs"], base / "logs", network_interfaces=["dgnone0"],
        lxcfs_roots=["/var/lib/lxcfs", str(base / "nolxcfs")]))
    install.install_hooks(str(base / "root"), policy=str(policy))
    hooks = Installed(base / "root" / "hooks")
    hooks.base = base
    yield hooks
    shutil.rmtree(base, ignore_errors=True)


def run_hook(prog, args, stdin: str, env=None):
    t0 = time.monotonic()
    res = subprocess.run([str(prog), *args], input=stdin, capture_output=True, text=True, env=env or {})
    return res, time.monotonic() - t0


def test_installed_programs_are_root_owned_and_skip_the_shim(installed):
    for name in install.HOOK_PROGRAMS:
        path = installed / name
        st = os.stat(path)
        assert st.st_mode & 0o7777 == 0o755 and (os.geteuid() != 0 or st.st_uid == 0)
        first = path.read_text().splitlines()[0]
        assert first.startswith("#!/") and first.endswith(" -IS") and "shims" not in first


def test_recorder_appends_lines_with_empty_env(installed):
    log = installed.base / "logs" / "rec.log"
    for phase in ("prestart", "poststop"):
        res, elapsed = run_hook(installed / "docker-hooks", ["--state", phase, "--log", str(log)], json.dumps(STATE))
        assert res.returncode == 0, res.stderr
        assert elapsed < 2
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(x["id"], x["state"], x["pid"]) for x in lines] == [("abc", "prestart", 4242), ("abc", "poststop", 4242)]
    st = os.stat(log)
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o640


def test_recorder_default_log_is_in_the_policy_log_dir(installed):
    res, _ = run_hook(installed / "docker-hooks", ["--state", "prestart"], json.dumps(STATE))
    assert res.returncode == 0, res.stderr
    assert json.loads((installed.base / "logs" / "docker-hooks.log").read_text().splitlines()[-1])["id"] == "abc"


def test_recorder_bad_state_is_an_error(installed):
    log = installed.base / "logs" / "r.log"
    res, _ = run_hook(installed / "docker-hooks", ["--state", "prestart", "--log", str(log)], "garbage")
    assert res.returncode == 1 and res.stderr.startswith("docker-hooks: OCI state on stdin is not valid JSON")
    assert not log.exists()


@pytest.mark.parametrize("where", ["/etc/dg-never-{}", "{logs}/../{}", "{logs}/sub/{}", "{logs}//{}", "/tmp/{}"])
def test_recorder_refuses_a_log_outside_the_log_dir_by_itself(installed, where):
    """Defence in depth: the program enforces the policy even if a spec got past the checks."""
    name = f"x-{uuid.uuid4().hex[:8]}.log"
    log = where.format(name, logs=installed.base / "logs")
    res, _ = run_hook(installed / "docker-hooks", ["--state", "prestart", "--log", log], json.dumps(STATE))
    assert res.returncode == 2 and "must be a file directly in" in res.stderr, res.stderr
    assert not os.path.exists(log) and not os.path.exists(os.path.normpath(log))


@pytest.mark.parametrize("plant", ["symlink", "hardlink", "fifo"])
def test_recorder_never_follows_what_is_planted_in_the_log_dir(installed, plant):
    logs = installed.base / "logs"
    victim = installed.base / f"victim-{plant}"
    victim.write_text("untouched\n")
    log = logs / f"planted-{plant}.log"
    if plant == "symlink":
        os.symlink(victim, log)
    elif plant == "hardlink":
        os.link(victim, log)
    else:
        os.mkfifo(log)
    res, elapsed = run_hook(installed / "docker-hooks", ["--state", "prestart", "--log", str(log)], json.dumps(STATE))
    assert res.returncode == 1, res.stderr
    assert victim.read_text() == "untouched\n" and elapsed < 5


def test_recorder_refuses_a_log_dir_others_can_write(installed):
    logs = installed.base / "logs"
    os.chmod(logs, 0o777)
    try:
        res, _ = run_hook(installed / "docker-hooks", ["--state", "prestart", "--log", str(logs / "w.log")], json.dumps(STATE))
    finally:
        os.chmod(logs, 0o755)
    assert res.returncode == 1 and "writable by group or others (mode 0777)" in res.stderr
    assert not (logs / "w.log").exists()


def test_recorder_refuses_a_log_dir_that_is_a_symlink(installed):
    """Even one root made: the policy names the directory, not wherever it points."""
    logs = installed.base / "logs"
    os.rename(logs, installed.base / "logs.real")
    os.symlink(installed.base / "logs.real", logs)
    try:
        res, _ = run_hook(installed / "docker-hooks", ["--state", "prestart", "--log", str(logs / "s.log")], json.dumps(STATE))
    finally:
        os.unlink(logs)
        os.rename(installed.base / "logs.real", logs)
    assert res.returncode == 1 and "is not reached through a symlink" in res.stderr, res.stderr
    assert not (logs / "s.log").exists()


def test_hooks_ignore_interpreter_variables(installed):
    """-I -S: PYTHONPATH/PYTHONSTARTUP/PYTHONINSPECT from a hook's env change nothing."""
    evil = installed.base / "evilpy"
    evil.mkdir(exist_ok=True)
    (evil / "json.py").write_text("raise SystemExit('imported from PYTHONPATH')\n")
    res, _ = run_hook(installed / "docker-hooks", ["--state", "prestart"], json.dumps(STATE),
                      env={"PYTHONPATH": str(evil), "PYTHONHOME": str(evil), "PYTHONINSPECT": "1"})
    assert res.returncode == 0, res.stderr


def test_recorder_usage_error_exit_2(installed):
    res, _ = run_hook(installed / "docker-hooks", ["--state", "later"], json.dumps(STATE))
    assert res.returncode == 2 and "usage: docker-hooks" in res.stderr


def test_network_hook_poststop_is_a_no_op(installed):
    res, _ = run_hook(installed / "network-hook", ["dgnone0", "x0"], json.dumps({**STATE, "status": "stopped", "pid": 0}))
    assert res.returncode == 0 and res.stderr == ""


def test_network_hook_missing_host_interface(installed):
    res, _ = run_hook(installed / "network-hook", ["dgnone0", "x0"], json.dumps({**STATE, "pid": os.getpid()}))
    assert res.returncode == 1 and res.stderr == "network-hook: host interface 'dgnone0' not found\n"


@pytest.mark.parametrize("iface, fault", [
    ("lo", "the loopback interface is never moved"),
    ("DEFAULT", "carries a default route of the host"),
])
def test_network_hook_refuses_by_itself(installed, iface, fault):
    """Run against our own pid (it would move the link into our own namespace): refused first."""
    if iface == "DEFAULT":
        routes = sorted(network_hook.default_route_ifaces())
        if not routes:
            pytest.skip("this host has no default route")
        iface = routes[0]
    res, _ = run_hook(installed / "network-hook", [iface, "x0"], json.dumps({**STATE, "pid": os.getpid()}))
    assert res.returncode == 2 and fault in res.stderr, res.stderr


def test_lxcfs_hook_reports_missing_lxcfs(installed):
    log = installed.base / "logs" / "lx.log"
    root = installed.base / "nolxcfs"
    res, _ = run_hook(installed / "lxcfs-hook", ["--log", str(log), "--lxcfs-root", str(root)], json.dumps(STATE))
    assert res.returncode == 1
    assert res.stderr == f"lxcfs-hook: lxcfs is not running: no lxcfs mount at {root} (start it: lxcfs {root})\n"
    assert json.loads(log.read_text())["error"].startswith("lxcfs is not running")


def test_lxcfs_hook_refuses_an_unlisted_root_and_log(installed):
    res, _ = run_hook(installed / "lxcfs-hook", ["--log", "/etc/dg-lx.log", "--lxcfs-root", "/tmp"], json.dumps(STATE))
    assert res.returncode == 2, res.stderr
    assert "log '/etc/dg-lx.log' must be a file directly in" in res.stderr
    assert "--lxcfs-root '/tmp' is not one the policy lists" in res.stderr
    assert not os.path.exists("/etc/dg-lx.log")
