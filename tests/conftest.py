"""Shared fixtures: private dockerd instances, never the system one.

Tests that need dockerd call `require_dockerd()` (through the fixtures): without root or
without dockerd they skip on a developer's machine, and FAIL under CI=true, so a green CI
cannot hide skipped real-docker tests.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from dockguard.daemon import PrivateDaemon

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_dockerd() -> None:
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    for tool in ("dockerd", "docker", "runc", "containerd"):
        if shutil.which(tool) is None:
            missing.append(tool)
    if missing:
        msg = "real-docker test needs: " + ", ".join(missing)
        if IN_CI:
            pytest.fail(msg + " (CI=true: failing instead of skipping)")
        pytest.skip(msg)


def short_tmpdir(prefix: str = "dg") -> Path:
    """A short base path: unix socket paths are capped at 108 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@pytest.fixture(scope="session")
def daemon_factory():
    """Start private dockerds with options; all torn down at session end."""
    started: list[PrivateDaemon] = []

    def make(*, busybox: bool = True, **kwargs) -> PrivateDaemon:
        require_dockerd()
        d = PrivateDaemon(short_tmpdir(), **kwargs)
        started.append(d)
        d.start()
        if busybox:
            d.import_busybox()
        return d

    yield make
    for d in reversed(started):
        d.remove()


@pytest.fixture(scope="session")
def plain_daemon(daemon_factory) -> PrivateDaemon:
    """A private dockerd without plugins, with the busybox image imported."""
    return daemon_factory()
