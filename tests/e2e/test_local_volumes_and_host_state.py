"""Issue 7, holes 1 and 6 on a real dockerd.

Hole 1: a `local` volume is a mount(2) dockerd runs as root in the host's namespaces. On an
unguarded daemon a proc volume shows the host's PID 1 and an overlay volume reads host
directories; guarded, both are refused at `volume create`, inline at `create`, and at use for
a volume made while the rule was off, with a plain, a tmpfs and an o=bind volume of a safe
directory allowed.
Hole 6: everything under /run and /var (and the daemon's own exec-root, here a private one
under /tmp) is refused, and a path listed in allowed_paths is allowed.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

DENIED = "authorization denied by plugin"
PROC_OPTS = ["--opt", "type=proc", "--opt", "device=proc"]
PROC_MOUNT = "type=volume,dst=/p,volume-driver=local,volume-opt=type=proc,volume-opt=device=proc"


def denied(res, rule):
    assert res.returncode != 0, f"expected a denial by {rule}, got success: {res.stdout}"
    assert DENIED in res.stderr, res.stderr
    assert f"[{rule}]" in res.stderr, res.stderr
    assert "Safely:" in res.stderr, res.stderr


def ok(res):
    assert DENIED not in res.stderr, res.stderr
    assert res.returncode == 0, res.stderr
    return res.stdout


def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def host_pid1_cmdline() -> str:
    return Path("/proc/1/cmdline").read_bytes().split(b"\0")[0].decode()


@pytest.fixture
def layers(tmp_path):
    """Two directories for an overlay, the first holding a test-made secret."""
    lower, lower2 = tmp_path / "lower", tmp_path / "lower2"
    lower.mkdir()
    lower2.mkdir()
    token = uuid.uuid4().hex
    (lower / "secret.txt").write_text(token)
    return f"lowerdir={lower}:{lower2}", token


# ---- hole 1: the exploit is real on an unguarded daemon ----

def test_unguarded_proc_volume_shows_the_hosts_pid_1(plain_daemon):
    out = ok(plain_daemon.docker("run", "--rm", "--mount", PROC_MOUNT, "busybox",
                                 "sh", "-c", "tr '\\0' '\\n' < /p/1/cmdline | head -n1; "
                                             "tr '\\0' '\\n' < /proc/1/cmdline | head -n1"))
    host_side, own = out.splitlines()
    assert host_side == host_pid1_cmdline() and own == "sh"  # /p is the host's /proc


def test_unguarded_overlay_volume_reads_host_directories(plain_daemon, layers):
    o, token = layers
    vol = uniq("ovl")
    ok(plain_daemon.docker("volume", "create", "--opt", "type=overlay", "--opt", "device=overlay",
                           "--opt", f"o={o}", vol))
    try:
        assert ok(plain_daemon.docker("run", "--rm", "-v", f"{vol}:/x", "busybox", "cat", "/x/secret.txt")) == token
    finally:
        plain_daemon.docker("volume", "rm", "-f", vol)


# ---- hole 1: refused on a guarded daemon ----

@pytest.mark.parametrize("opts,what", [
    (PROC_OPTS, "type 'proc' shows the host kernel's own state"),
    (["--opt", "type=sysfs", "--opt", "device=sysfs"], "type 'sysfs' shows the host kernel's own state"),
    (["--opt", "type=cgroup2", "--opt", "device=cgroup2"], "shows the host kernel's own state"),
    (["--opt", "type=ext4", "--opt", "device=/dev/vda"], "type 'ext4' is not an allowed volume type"),
    (["--opt", "type=nfs", "--opt", "device=127.0.0.1:/", "--opt", "o=addr=127.0.0.1"],
     "server 127.0.0.1 is not in the policy's volume_servers"),
])
def test_volume_create_refused(guarded, opts, what):
    r = guarded.docker("volume", "create", *opts, uniq("v"))
    denied(r, "volume-mount-type")
    assert what in r.stderr


def test_overlay_volume_create_refused(guarded, layers):
    o, _ = layers
    r = guarded.docker("volume", "create", "--opt", "type=overlay", "--opt", "device=overlay", "--opt", f"o={o}",
                       uniq("ovl"))
    denied(r, "volume-mount-type")
    assert "type 'overlay' is not an allowed volume type" in r.stderr


def test_inline_volume_at_create_refused(guarded, layers):
    denied(guarded.docker("create", "--mount", PROC_MOUNT, "busybox", "true"), "volume-mount-type")
    o, _ = layers
    m = f"type=volume,src={uniq('ovl')},dst=/x,volume-opt=type=overlay,volume-opt=device=overlay,\"volume-opt=o={o}\""
    denied(guarded.docker("create", "--mount", m, "busybox", "true"), "volume-mount-type")


def test_benign_volumes_allowed(guarded, tmp_path):
    plain, tmpfs, bound = uniq("plain"), uniq("tmpfs"), uniq("bound")
    ok(guarded.docker("volume", "create", plain))
    assert ok(guarded.docker("run", "--rm", "-v", f"{plain}:/d", "busybox", "sh", "-c",
                             "echo hi > /d/f && cat /d/f")) == "hi\n"
    ok(guarded.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=8m",
                      tmpfs))
    mounts = ok(guarded.docker("run", "--rm", "-v", f"{tmpfs}:/t", "busybox", "grep", " /t ", "/proc/mounts"))
    assert mounts.startswith("tmpfs /t tmpfs")
    ok(guarded.docker("run", "--rm", "--mount", "type=volume,dst=/t,volume-opt=type=tmpfs,volume-opt=device=tmpfs",
                      "busybox", "true"))
    (tmp_path / "f.txt").write_text("bound\n")
    ok(guarded.docker("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={tmp_path}",
                      bound))
    assert ok(guarded.docker("run", "--rm", "-v", f"{bound}:/b", "busybox", "cat", "/b/f.txt")) == "bound\n"


@pytest.fixture(scope="module")
def carve_dir():
    """A directory under /var made for this test (and removed), listed in allowed_paths."""
    d = Path("/var/tmp") / uniq("dgc1-allowed")
    d.mkdir()
    (d / "f.txt").write_text("allowed\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def relaxed_then_strict(guarded_factory, tmp_path_factory, carve_dir, request):
    """A guarded daemon whose plugin first runs with volume-mount-type off (volumes and a
    container made then), then is restarted with the default rules plus allowed_paths."""
    pdir = tmp_path_factory.mktemp("c1pol")
    off = pdir / "off.toml"
    off.write_text('[rules]\nvolume-mount-type = "off"\n')
    g = guarded_factory(policy=str(off))
    made = {"procvol": uniq("procvol"), "tmpvol": uniq("tmpvol"), "holder": uniq("holder")}
    ok(g.docker("volume", "create", *PROC_OPTS, made["procvol"]))
    ok(g.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", made["tmpvol"]))
    ok(g.docker("create", "--name", made["holder"], "-v", f"{made['procvol']}:/p", "busybox", "true"))
    strict = pdir / "strict.toml"
    strict.write_text(f'[lists]\nallowed_paths = ["{carve_dir}"]\n')
    g.plugin.stop()
    g.plugin.policy = str(strict)
    g.plugin.start()
    return g, made


def test_volume_made_with_the_rule_off_is_refused_at_use(relaxed_then_strict):
    g, made = relaxed_then_strict
    proc = made["procvol"]
    denied(g.docker("run", "--rm", "-v", f"{proc}:/p", "busybox", "cat", "/p/1/cmdline"), "volume-mount-type")
    denied(g.docker("create", "--mount", f"type=volume,src={proc},dst=/p", "busybox", "true"), "volume-mount-type")
    r = g.docker("create", "--volumes-from", made["holder"], "busybox", "true")
    denied(r, "volume-mount-type")
    assert f"--volumes-from {made['holder']} (volume {proc})" in r.stderr
    # the container made then, holding it, is judged again when started
    denied(g.docker("start", made["holder"]), "volume-mount-type")
    # twins: a tmpfs volume made then, and a new plain one
    ok(g.docker("run", "--rm", "-v", f"{made['tmpvol']}:/t", "busybox", "true"))
    ok(g.docker("run", "--rm", "-v", f"{uniq('fresh')}:/d", "busybox", "true"))


# ---- hole 6: host state under /run and /var, and the daemon's own exec-root ----

@pytest.mark.parametrize("src", ["/run/dbus", "/run/systemd", "/run/user", "/var/run/dbus", "/var/lock",
                                 "/var/spool", "/var/spool/cron", "/var/backups", "/var/lib/apt", "/var/cache",
                                 "/var/mail", "/var/tmp"])
def test_host_state_refused(guarded, src):
    denied(guarded.docker("create", "-v", f"{src}:/x", "busybox", "true"), "sensitive-mount")
    denied(guarded.docker("create", "--mount", f"type=bind,src={src},dst=/x", "busybox", "true"), "sensitive-mount")


def test_host_state_as_a_bind_volume_refused(guarded):
    denied(guarded.docker("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=/var/backups",
                          uniq("bk")), "sensitive-volume")


def test_the_daemons_own_exec_root_is_refused(guarded):
    """The private daemon's exec-root (--exec-root BASE/exec) is not the default one: it is
    found from the process serving the socket, and refused, as is its parent."""
    exec_root = guarded.daemon.exec_root  # neither the data-root nor the socket: only found by asking
    for src in (exec_root, exec_root / "netns", exec_root / "containerd"):
        r = guarded.docker("create", "-v", f"{src}:/x", "busybox", "true")
        denied(r, "sensitive-mount")
        assert f"(sensitive: {exec_root})" in r.stderr
    denied(guarded.docker("create", "-v", f"{exec_root.parent}:/x", "busybox", "true"), "sensitive-mount")


def test_a_listed_path_under_var_is_allowed(relaxed_then_strict, carve_dir):
    g, _ = relaxed_then_strict
    assert ok(g.docker("run", "--rm", "-v", f"{carve_dir}:/x", "busybox", "cat", "/x/f.txt")) == "allowed\n"
    denied(g.docker("create", "-v", f"{carve_dir.parent}:/x", "busybox", "true"), "sensitive-mount")
    denied(g.docker("create", "-v", "/var/tmp/dgc1-not-listed:/x", "busybox", "true"), "sensitive-mount")


HARDENED_LOOKUP = """
import sys
from authz import daemondirs as dd
print(dd.find_dockerd(sys.argv[1], sys.argv[2]).exec_root)
"""


def test_exec_root_found_under_the_units_restrictions(guarded):
    """The shipped unit gives the plugin no network namespace of the host (PrivateNetwork) and
    only CAP_DAC_READ_SEARCH: other processes' fds, cwd and root are unreadable, the host's
    /proc/net/unix invisible. The exec-root is still found (cmdline, status, config file)."""
    if not (shutil.which("unshare") and shutil.which("setpriv")):
        pytest.fail("needs unshare and setpriv (util-linux)")
    d = guarded.daemon
    r = subprocess.run(["unshare", "-n", "setpriv", "--bounding-set=-all,+dac_read_search", "--inh-caps=-all",
                        sys.executable, "-c", HARDENED_LOOKUP, str(d.socket), str(d.data_root)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(d.exec_root)
