"""Install, run a container under the dockguard runtime, uninstall, restart dockerd, start it again.

A private dockerd runs on the daemon.json `dockguard install --root STAGE` wrote (paths of
files staged under STAGE are mapped into it); never the machine's own /etc/docker.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dockguard.harness.daemon import PrivateDaemon
from tests.conftest import require_dockerd, short_tmpdir

pytestmark = pytest.mark.docker


def dg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dockguard.cli", *args], capture_output=True,
                          text=True, timeout=120)


def apply_staged(d: PrivateDaemon, stage: Path) -> dict:
    """The staged daemon.json's runtimes on the private dockerd (staged paths mapped)."""
    conf = json.loads((stage / "etc/docker/daemon.json").read_text())
    runtimes = {}
    for name, rt in conf.get("runtimes", {}).items():
        staged = stage / rt["path"].lstrip("/")
        runtimes[name] = {**rt, "path": str(staged) if staged.exists() else rt["path"]}
    d.runtimes = runtimes
    d.default_runtime = conf.get("default-runtime")
    return conf


def test_uninstall_keeps_containers_startable(tmp_path):
    require_dockerd()
    d = PrivateDaemon(short_tmpdir("dgu"))
    stage = tmp_path / "stage"
    d.data_root.mkdir(parents=True)
    # the staged root sees the daemon's real data root, so uninstall finds its containers
    (stage / str(d.data_root.parent).lstrip("/")).mkdir(parents=True)
    (stage / str(d.data_root).lstrip("/")).symlink_to(d.data_root)
    missing_spec = tmp_path / "no-such-hookspec.json"      # a daemon-wide spec not written yet
    try:
        res = dg("install", "--root", str(stage), "--docker-root", str(d.data_root),
                 "--hook-spec", str(missing_spec))
        assert res.returncode == 0, res.stderr
        conf = apply_staged(d, stage)
        assert conf["default-runtime"] == "dockguard"
        d.start()
        d.import_busybox()
        res = d.docker("create", "--name", "c1", "busybox", "true")
        assert res.returncode == 0, res.stderr
        res = d.docker("start", "-a", "c1")
        assert res.returncode == 0, res.stderr + d.log_tail()   # no "cannot open hook-spec"
        assert d.docker("inspect", "-f", "{{.HostConfig.Runtime}}", "c1").stdout.strip() == "dockguard"

        res = dg("uninstall", "--root", str(stage))
        assert res.returncode == 0, res.stderr
        assert "container(s) were created with it" in res.stdout
        assert not (stage / "usr/local/bin/dockguard-runtime").exists()
        conf = apply_staged(d, stage)
        assert conf["runtimes"]["dockguard"]["path"].endswith("runc")
        assert "default-runtime" not in conf and "authorization-plugins" not in conf
        d.restart()
        res = d.docker("start", "-a", "c1")
        assert res.returncode == 0, res.stderr + d.log_tail()
        res = d.docker("run", "--rm", "busybox", "true")
        assert res.returncode == 0, res.stderr
    finally:
        d.stop()
        d.remove()
