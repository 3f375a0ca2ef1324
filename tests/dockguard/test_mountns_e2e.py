"""`dockguard install` and `uninstall` with the real root (/), in a private mount namespace.

/etc, /usr/local and /var/lib are overlays whose writes land in a temp dir, so the machine's
own /etc/docker and systemd dirs are never written. systemd is not PID 1 here (as in an image
build or a chroot): the systemctl steps are best effort and reported, never fatal.
"""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_dockerd

pytestmark = pytest.mark.docker

OVERLAID = ("/etc", "/usr/local", "/var/lib")


MINE = ("/etc/systemd/system/dockguard-authz.socket", "/etc/systemd/system/docker.service.d/dockguard.conf",
        "/etc/docker/plugins/dockguard.spec", "/etc/dockguard/policy.toml",
        "/usr/local/bin/dockguard-runtime", "/var/lib/dockguard/install.json")


def host_state() -> tuple:
    """What this test must never change on the machine itself (other helpers' tests may
    change other files there meanwhile, so only what install would write is compared)."""
    try:
        daemon_json = hashlib.sha256(Path("/etc/docker/daemon.json").read_bytes()).hexdigest()
    except OSError:
        daemon_json = None
    return (daemon_json, sorted(str(p) for p in Path("/etc/docker").glob("daemon.json.dockguard-*")),
            {p: os.path.lexists(p) for p in MINE})


def in_namespace(tmp: Path, script: str) -> subprocess.CompletedProcess:
    mounts = []
    for i, d in enumerate(OVERLAID):
        up, work = tmp / f"up{i}", tmp / f"work{i}"
        up.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        mounts.append(f"mount -t overlay overlay -o lowerdir={d},upperdir={up},workdir={work} {d}")
    body = "set -e\n" + "\n".join(mounts) + "\n" + script
    return subprocess.run(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", body],
                          capture_output=True, text=True, timeout=300)


def test_install_and_uninstall_on_slash_without_systemd(daemon_factory, tmp_path):
    require_dockerd()
    if os.path.isdir("/run/systemd/system"):
        pytest.fail("systemd is PID 1 here: this test is about hosts where it is not")
    d = daemon_factory(busybox=False)
    before = host_state()
    dg = f"{sys.executable} -m dockguard.cli"
    common = f"--docker-root {d.data_root}"
    res = in_namespace(tmp_path, f"""
cd /
{dg} install {common} --docker-host {d.host}
echo ===SECOND
{dg} install {common} --docker-host {d.host}
echo ===FILES
cat /etc/docker/daemon.json
echo ===LS
ls /etc/systemd/system/dockguard-authz.socket /etc/dockguard/policy.toml /usr/local/bin/dockguard-runtime
echo ===UNINSTALL
{dg} uninstall
test ! -e /etc/systemd/system/dockguard-authz.socket
test ! -e /usr/local/bin/dockguard-runtime
echo ===DONE
""")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    first, rest = res.stdout.split("===SECOND", 1)
    second, rest = rest.split("===FILES", 1)
    assert "wrote /etc/systemd/system/dockguard-authz.service" in first
    assert "nothing to change" in second
    conf = json.loads(rest.split("===LS", 1)[0])
    assert "dockguard" in conf["authorization-plugins"] and conf["default-runtime"] == "dockguard"
    assert "===DONE" in res.stdout
    # systemctl: tried, and either done offline or reported; never a failure of the install
    assert "systemctl enable dockguard-authz.socket" in out
    assert "Traceback" not in out
    assert host_state() == before
