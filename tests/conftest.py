"""Shared fixtures: private dockerd instances, never the system one.

Tests that need dockerd call `require_dockerd()` (through the fixtures): without root or
without dockerd they skip on a developer's machine, and FAIL under CI=true, so a green CI
cannot hide skipped real-docker tests.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from authz.launch import PluginProcess
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


@dataclass
class Guarded:
    """A private dockerd guarded by a dockguard plugin process of its own."""

    daemon: PrivateDaemon
    plugin: PluginProcess

    def docker(self, *args, **kw):
        return self.daemon.docker(*args, **kw)

    def audit_lines(self) -> list[dict]:
        """The plugin's audit records so far (its stdout is the log file)."""
        out = []
        for line in self.plugin.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"decision"' in line:
                out.append(json.loads(line))
        return out


@pytest.fixture(scope="session")
def guarded_factory():
    """Start plugin + dockerd pairs (optionally with a policy file); torn down at the end."""
    made: list[Guarded] = []

    def make(policy: str | None = None, **daemon_kw) -> Guarded:
        require_dockerd()
        base = short_tmpdir("dga")
        name = "dg-test-" + base.name
        d = PrivateDaemon(base, authz_plugins=[name], **daemon_kw)
        p = PluginProcess(name, docker_host=d.host, policy=policy, log_path=base / "plugin.log")
        p.start()
        g = Guarded(d, p)
        made.append(g)
        d.start()
        d.import_busybox()
        return g

    yield make
    for g in reversed(made):
        g.daemon.stop()
        g.plugin.stop()
        shutil.rmtree(g.daemon.base, ignore_errors=True)


@pytest.fixture(scope="session")
def guarded(guarded_factory) -> Guarded:
    """The default policy on a private dockerd: the guide, enforced."""
    return guarded_factory()
