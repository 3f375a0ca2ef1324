"""Fixtures for the credential-helper tests: a private docker config dir and the real helper."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from dockguard.creds import enable

SECRET = "pa55-W0rd:with/odd=chars+\u00e9"
USER = "tester"


@pytest.fixture
def cfg(tmp_path) -> Path:
    """An empty docker config dir (0700, like the CLI's)."""
    d = tmp_path / "docker"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture(scope="session")
def helper_bin() -> Path:
    """docker-credential-dockguard as `dockguard install --creds` installs it (-I -S front)."""
    d = Path(tempfile.mkdtemp(prefix="dgcred-bin"))
    os.chmod(d, 0o755)
    yield Path(enable.install_helper(str(d)))
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def helper(helper_bin, cfg):
    """Run the helper as the docker CLI does: ACTION as the only argument, stdin, stdout."""
    def run(action: str, stdin: str = "", config: Path | None = None, **kw) -> subprocess.CompletedProcess:
        env = {"PATH": "/usr/bin:/bin", "DOCKER_CONFIG": str(config or cfg), "HOME": "/nonexistent"}
        return subprocess.run([str(helper_bin), action], input=stdin, capture_output=True, text=True,
                              env=env, timeout=60, **kw)
    return run
