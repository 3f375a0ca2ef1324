"""Shared fixtures: private dockerd instances, never the system one.

Tests that need dockerd call `require_dockerd()` (through the fixtures): without root or
without dockerd they skip on a developer's machine, and FAIL under CI=true, so a green CI
cannot hide skipped real-docker tests.

Engine. The private daemons run `dockerd` from PATH, or the engine named by
DOCKGUARD_DOCKERD (its install tree's docker CLI, docker-proxy and docker-buildx first):

    DOCKGUARD_DOCKERD=/var/cache/dockguard/engines/26/usr/sbin/dockerd pytest tests/e2e

(scripts/get-docker-engine.sh fetches Debian 13's 26.x there). The header names the engine.

A test that only applies to some engines says so with a marker, and is DESELECTED on the
others (counted as "deselected" and listed in the summary, never skipped or passed):

    @pytest.mark.engine(min_api="1.43")             # annotations exist from API 1.43
    @pytest.mark.engine(max_api="1.41", reason="...")
    @pytest.mark.engine(min_version="26")           # by dockerd release

Prefer asserting each engine's own behaviour (e.g. its real body limit) where both have one.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockguard.harness.plugin import PluginProcess
from dockguard.harness.daemon import DaemonError, Engine, PrivateDaemon, version_tuple

IN_CI = os.environ.get("CI", "").lower() == "true"

# Host directories the suite (or dockguard-runtime under it) creates when they are missing: the
# root-owned base of the hook-spec trust tests, and the runtime's policy cache and pin staging
# point. Removed at the end of the session when this session made them, so the host is left
# as it was found.
HOST_DIRS_MADE_BY_TESTS = ("/var/lib/dgt", "/run/dockguard")


@pytest.fixture(scope="session", autouse=True)
def leave_host_dirs_as_found():
    missing = [d for d in HOST_DIRS_MADE_BY_TESTS if not os.path.lexists(d)]
    yield
    for d in missing:
        if os.path.isdir(d) and not os.path.islink(d):
            shutil.rmtree(d, ignore_errors=True)


def require_dockerd() -> None:
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    try:
        engine = Engine.from_env()
    except DaemonError as e:
        pytest.fail(str(e))
    path = engine.path()
    for tool in (engine.dockerd, "docker", "runc", "containerd"):
        if shutil.which(tool, path=path) is None:
            missing.append(tool)
    if missing:
        msg = "real-docker test needs: " + ", ".join(missing)
        if IN_CI:
            pytest.fail(msg + " (CI=true: failing instead of skipping)")
        pytest.skip(msg)


def require_root_tools(*tools: str) -> None:
    """Root and these programs, for a test that needs no dockerd: skip on a developer's
    machine without them, FAIL under CI=true (a green CI cannot hide a skipped test)."""
    missing = (["root"] if os.geteuid() != 0 else []) + [t for t in tools if shutil.which(t) is None]
    if missing:
        msg = "test needs: " + ", ".join(missing)
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

    def make(policy: str | None = None, base: Path | None = None, **daemon_kw) -> Guarded:
        require_dockerd()
        base = base or short_tmpdir("dga")
        name = "dg-test-" + base.name
        d = PrivateDaemon(base, authz_plugins=[name], **daemon_kw)
        p = PluginProcess(name, docker_host=d.host, policy=policy, log_path=base / "plugin.log",
                          plugin_dir=d.plugin_dir)
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


# ---- engine selection: @pytest.mark.engine(...) deselects on other engines ----

_ENGINE: dict = {}


def engine_info() -> dict:
    """{'version': '26.1.5', 'api': '1.45', 'describe': ...} of the chosen engine, or {} when
    there is none here (the real-docker tests then fail or skip through require_dockerd)."""
    if not _ENGINE:
        try:
            e = Engine.from_env()
            version = e.version()
            api = e.api_version()
            if api is None and os.geteuid() == 0:      # a release the table does not know: ask it
                d = PrivateDaemon(short_tmpdir("dgv"))
                try:
                    api = d.start().api_version()
                finally:
                    d.remove()
            _ENGINE.update(version=version, api=api, describe=e.describe())
        except (DaemonError, OSError):
            _ENGINE["describe"] = "none found"
    return _ENGINE


def _engine_mismatch(marker, info: dict) -> str | None:
    """Why a test marked `engine(...)` does not apply to this engine (None: it applies)."""
    kw = dict(marker.kwargs)
    reason = kw.pop("reason", "")
    checks = {"min_api": ("api", 1), "max_api": ("api", -1),
              "min_version": ("version", 1), "max_version": ("version", -1)}
    for key, bound in kw.items():
        if key not in checks:
            raise pytest.UsageError(f"engine marker: unknown argument {key!r} (known: {', '.join(checks)}, reason)")
        what, sign = checks[key]
        have = info.get(what)
        if have is None:
            return None
        have_t, bound_t = version_tuple(have), version_tuple(str(bound))
        have_t = have_t[:len(bound_t)]
        if (sign == 1 and have_t < bound_t) or (sign == -1 and have_t > bound_t):
            return f"{key}={bound}, engine {what} {have}" + (f" ({reason})" if reason else "")
    return None


def pytest_configure(config):
    config.addinivalue_line("markers", "engine(min_api=None, max_api=None, min_version=None, max_version=None, "
                                       "reason=''): only for these engines; deselected on others")
    config._engine_deselected = []


def pytest_report_header(config):
    return f"engine: {engine_info()['describe']}  ({'DOCKGUARD_DOCKERD' if os.environ.get('DOCKGUARD_DOCKERD') else 'dockerd on PATH'})"


def pytest_collection_modifyitems(config, items):
    marked = [it for it in items if it.get_closest_marker("engine")]
    if not marked:
        return
    info = engine_info()
    keep, drop = [], []
    for it in items:
        why = None
        m = it.get_closest_marker("engine")
        if m is not None:
            why = _engine_mismatch(m, info)
        if why:
            drop.append(it)
            config._engine_deselected.append((it.nodeid, why))
        else:
            keep.append(it)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    gone = getattr(config, "_engine_deselected", [])
    if gone:
        terminalreporter.write_sep("-", f"{len(gone)} deselected for engine {engine_info().get('version')}")
        for nodeid, why in gone:
            terminalreporter.write_line(f"DESELECTED {nodeid}: {why}")
