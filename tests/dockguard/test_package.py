"""The package alone is enough: a wheel built from the tree, installed into a fresh venv outside
the checkout, installs the host files (package data) and runs the plugin (gevent worker).

Needs PyPI for the wheel's dependencies (pip's cache makes re-runs quick).
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dockguard.harness.plugin import activate

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "dockguard", "authz", "hookbin", "healthd")


def run(*cmd, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kw)
    assert res.returncode == 0, f"{cmd}: {res.stdout[-3000:]}{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"          # a copy: building in the checkout would leave build/ behind
    src.mkdir()
    for name in SOURCES:
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(p, src / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", src)
    [wheel] = (tmp / "dist").glob("dockguard-*.whl")
    venv = tmp / "venv"
    run(os.path.realpath(sys.executable), "-m", "venv", venv)
    run(venv / "bin/pip", "install", "-q", wheel)
    return venv


def test_wheel_installs_and_runs_outside_the_checkout(venv, tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    version = run(venv / "bin/dockguard", "--version", cwd=tmp_path, env=env).stdout.strip()
    assert version == f"dockguard {__import__('dockguard').__version__}"
    where = run(venv / "bin/python", "-c", "import dockguard; print(dockguard.__file__)",
                cwd=tmp_path, env=env).stdout.strip()
    assert where.startswith(str(venv)) and not where.startswith(str(REPO))
    stage = tmp_path / "stage"
    res = run(venv / "bin/dockguard", "install", "--root", stage, cwd=tmp_path, env=env)
    assert "nothing to change" not in res.stdout
    unit = (stage / "etc/systemd/system/dockguard-authz.service").read_text()
    assert f"ExecStart={venv}/bin/dockguard authz serve" in unit
    for f in ("etc/systemd/system/dockguard-authz.socket", "etc/systemd/system/dockguard-healthd.service",
              "etc/docker/plugins/dockguard.spec", "etc/dockguard/policy.toml", "etc/dockguard/authz.env",
              "var/lib/docker/hooks/network-hook", "usr/local/bin/dockguard-runtime"):
        assert (stage / f).is_file(), f
    hook = (stage / "var/lib/docker/hooks/network-hook").read_text()
    assert str(venv) in hook and str(REPO) not in hook      # hooks import from the venv
    # the plugin runs with the wheel's dependencies alone (gevent worker)
    sock = tmp_path / "p.sock"
    log = open(tmp_path / "plugin.log", "wb")
    proc = subprocess.Popen([venv / "bin/dockguard", "authz", "serve", "--socket", sock,
                             "--policy", stage / "etc/dockguard/policy.toml"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (sock.exists() and activate(sock)):
            assert proc.poll() is None, (tmp_path / "plugin.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "plugin.log").read_text()
            time.sleep(0.1)
        first = json.loads((tmp_path / "plugin.log").read_text().splitlines()[0])
        assert first["worker_class"] == "gevent" and first["version"] == version.split()[1]
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
        log.close()
