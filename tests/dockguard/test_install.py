"""`dockguard install --root DIR`: the files Docker and systemd read, staged under DIR."""
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                                reason="install writes root-owned hook programs")


def run_install(root: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dockguard.cli", "install", "--root", str(root), *extra],
                          capture_output=True, text=True, timeout=60)


def test_install_stages_spec_units_hooks_and_runtime(tmp_path):
    res = run_install(tmp_path)
    assert res.returncode == 0, res.stderr
    spec = tmp_path / "etc/docker/plugins/dockguard.spec"
    assert spec.read_text().strip() == "unix:///run/dockguard/authz.sock"
    exe = str(Path(sys.prefix) / "bin" / "dockguard")
    for unit in ("dockguard-authz.service", "dockguard-healthd.service"):
        text = (tmp_path / "etc/systemd/system" / unit).read_text()
        assert f"ExecStart={exe} " in text, text
        assert "/opt/dockguard/.venv" not in text
    authz_unit = (tmp_path / "etc/systemd/system/dockguard-authz.service").read_text()
    assert "Before=docker.service" in authz_unit and "RequiredBy=docker.service" in authz_unit
    for hook in ("network-hook", "lxcfs-hook", "docker-hooks"):
        st = (tmp_path / "var/lib/docker/hooks" / hook).stat()
        assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o755
    front = tmp_path / "usr/local/bin/dockguard-runtime"
    assert front.read_text().startswith("#!/bin/sh")
    conf = json.loads(res.stdout[res.stdout.index("{"):res.stdout.rindex("}") + 1])
    assert conf["authorization-plugins"] == ["dockguard"]
    assert conf["default-runtime"] == "dockguard"
    assert conf["runtimes"]["dockguard"]["path"] == "/usr/local/bin/dockguard-runtime"
    assert conf["runtimes"]["dockguard"]["runtimeArgs"] == ["--hook-spec", "/etc/docker/hookspec.json",
                                                            "--docker-root", "/var/lib/docker"]


def test_install_without_hooks(tmp_path):
    res = run_install(tmp_path, "--no-hooks")
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "usr/local/bin/dockguard-runtime").exists()
    conf = json.loads(res.stdout[res.stdout.index("{"):res.stdout.rindex("}") + 1])
    assert conf == {"authorization-plugins": ["dockguard"]}
