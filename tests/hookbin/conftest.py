"""Fixtures for hookbin: a fake Docker root with a hooks dir, and a private dockerd whose
runtimes are dockguard-runtime (installed for real) with and without a daemon-wide spec.

Hook-specs and hook programs are trusted only when their whole path is root's alone, which
/tmp is not (world-writable): everything here lives under TRUSTED_BASE (root-owned 0755),
and the runtime and hooks get a policy whose spec_dirs and log_dir point inside it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from dockguard.harness.daemon import PrivateDaemon
from hookbin import install
from hookbin.policy import HookPolicy

from ..conftest import IN_CI, require_dockerd

TRUSTED_BASE = "/var/lib/dgt"


def trusted_tmpdir(prefix: str = "dg") -> Path:
    """A fresh root-owned 0755 directory whose every parent is root's alone (short: sockets)."""
    if os.geteuid() != 0:
        msg = "hook-spec trust needs root-owned directories: run as root"
        if IN_CI:
            pytest.fail(msg + " (CI=true: failing instead of skipping)")
        pytest.skip(msg)
    os.makedirs(TRUSTED_BASE, mode=0o755, exist_ok=True)
    os.chown(TRUSTED_BASE, 0, 0)
    os.chmod(TRUSTED_BASE, 0o755)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=TRUSTED_BASE))
    os.chmod(path, 0o755)
    return path


def policy_toml(spec_dirs, log_dir, network_interfaces=(), lxcfs_roots=("/var/lib/lxcfs",), env_allow=(),
                rules: dict | None = None) -> str:
    lines = []
    if rules:
        lines.append("[rules]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in rules.items()]
    lines += ["[hookspec]",
              f"spec_dirs = {json.dumps([str(d) for d in spec_dirs])}",
              f"log_dir = {json.dumps(str(log_dir))}",
              f"network_interfaces = {json.dumps(list(network_interfaces))}",
              f"lxcfs_roots = {json.dumps(list(lxcfs_roots))}",
              f"env_allow = {json.dumps(list(env_allow))}"]
    return "\n".join(lines) + "\n"


def write_root_file(path: Path, text: str, mode: int = 0o644) -> Path:
    """Atomically (readers never see half a policy), root-owned."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path

RECORD_SH = '#!/bin/sh\n# record TAG LOG: one line "TAG <state json>" per call\nprintf \'%s %s\\n\' "$1" "$(/bin/cat)" >> "$2"\n'
FAIL_SH = '#!/bin/sh\n/bin/cat >/dev/null\necho "boom from hook: $1" >&2\nexit 3\n'
SLEEP_SH = '#!/bin/sh\nexec /bin/sleep 30\n'


def write_exec(path: Path, text: str, mode: int = 0o755) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def hook(path, *args, timeout=None, env=None) -> dict:
    h = {"path": str(path), "args": [Path(path).name, *map(str, args)], "env": env or []}
    if timeout is not None:
        h["timeout"] = timeout
    return h


def write_spec(path: Path, **phases) -> Path:
    path.write_text(json.dumps(phases, indent=2))
    return path


@pytest.fixture
def trusted(request) -> Path:
    """A trusted (root's alone) scratch directory, removed afterwards."""
    path = trusted_tmpdir("u")
    request.addfinalizer(lambda: shutil.rmtree(path, ignore_errors=True))
    return path


@pytest.fixture
def spec_dir(trusted) -> Path:
    """The policy's spec directory in the unit tests' `policy`."""
    d = trusted / "specs"
    d.mkdir(mode=0o755)
    return d


@pytest.fixture
def policy(trusted, spec_dir) -> HookPolicy:
    return HookPolicy(spec_dirs=(str(spec_dir),), log_dir=str(trusted / "logs"))


@pytest.fixture
def policy_file(trusted, spec_dir) -> Path:
    """The same policy as `policy`, as the file the runtime and the hooks read."""
    return write_root_file(trusted / "policy.toml", policy_toml([spec_dir], trusted / "logs"))


@pytest.fixture
def as_default_policy(monkeypatch, policy) -> HookPolicy:
    """Make `policy` the built-in default for in-process calls that pass none."""
    from hookbin import policy as hookpolicy
    monkeypatch.setattr(hookpolicy, "DEFAULT", policy)
    return policy


@pytest.fixture
def docker_root(trusted) -> Path:
    """A Docker-root-like directory with hooks/ holding a good hook program."""
    root = trusted / "root"
    (root / "hooks").mkdir(parents=True)
    os.chmod(root, 0o755)
    os.chmod(root / "hooks", 0o755)
    write_exec(root / "hooks" / "ok-hook", "#!/bin/sh\nexit 0\n")
    return root


def require_lxcfs(root: str = "/var/lib/lxcfs") -> None:
    """A working lxcfs at `root`: started here when absent, remounted when its daemon died
    (a stale FUSE mount answers ENOTCONN)."""
    import shutil
    import subprocess
    import time

    def works() -> bool:
        try:
            with open(f"{root}/proc/meminfo") as f:
                return "MemTotal" in f.read(200)
        except OSError:
            return False

    if not works() and shutil.which("lxcfs") and os.geteuid() == 0:
        subprocess.run(["umount", "-l", root], capture_output=True)  # a stale mount, if any
        os.makedirs(root, exist_ok=True)
        subprocess.Popen(["lxcfs", root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not works():
            time.sleep(0.1)
    if not works():
        msg = f"lxcfs is not running at {root} (apt-get install lxcfs; scripts/quickstart.sh starts it)"
        if IN_CI:
            pytest.fail(msg + " (CI=true: failing instead of skipping)")
        pytest.skip(msg)


class HookDaemon:
    """The private daemon plus the paths the e2e tests need."""

    def __init__(self, daemon, base: Path):
        self.d = daemon
        self.base = base
        self.root = daemon.data_root
        self.hooks = daemon.data_root / "hooks"
        self.wide_log = base / "wide.log"
        self.specs = base / "specs"
        self.logs = base / "logs"
        self.policy = base / "policy.toml"

    def spec(self, name: str, **phases) -> str:
        return str(write_spec(self.specs / f"{name}.json", **phases))

    def set_policy(self, **kw) -> None:
        """Rewrite the policy the runtime and the hook programs read (at every start)."""
        kw.setdefault("lxcfs_roots", ("/var/lib/lxcfs", "/nonexistent/lxcfs"))
        write_root_file(self.policy, policy_toml([self.specs], self.logs, **kw))

    def runc_list(self) -> list[str]:
        runc_root = self.d.exec_root / "runtime-runc" / self.d.namespace
        res = subprocess.run(["runc", "--root", str(runc_root), "list", "-q"], capture_output=True, text=True)
        return res.stdout.split()


@pytest.fixture(scope="session")
def hook_daemon():
    """dockerd with runtimes: dgplain (wrapper, no daemon-wide spec), dgwide (wrapper + a
    daemon-wide recorder spec), dgbadwide (wrapper + an invalid daemon-wide spec).

    Built here rather than with daemon_factory: the runtimes config must name paths inside
    the data root (the hooks dir), so the base directory has to be known before the start.
    """
    require_dockerd()
    base = trusted_tmpdir("dgh")
    root = base / "root"
    hooks = root / "hooks"
    for d in (base / "specs", base / "logs", root):
        d.mkdir(mode=0o755)
    policy = write_root_file(base / "policy.toml", policy_toml(
        [base / "specs"], base / "logs", lxcfs_roots=("/var/lib/lxcfs", "/nonexistent/lxcfs")))
    install.install_hooks(str(root), policy=str(policy))
    runtime = install.install_runtime(str(base / "bin"), docker_root=str(root))
    write_exec(hooks / "record", RECORD_SH)
    write_exec(hooks / "fail", FAIL_SH)
    write_exec(hooks / "sleepy", SLEEP_SH)
    wide = write_spec(base / "wide.json",
                      prestart=[hook(hooks / "record", "wide-pre", base / "wide.log")],
                      poststop=[hook(hooks / "record", "wide-stop", base / "wide.log")])
    badwide = write_spec(base / "badwide.json", prestart=[hook(hooks / "record", "x", "/dev/null", timeout=0)])
    runtimes = {
        "dgplain": install.runtime_config(runtime, str(root), policy=str(policy)),
        "dgwide": install.runtime_config(runtime, str(root), str(wide), policy=str(policy)),
        "dgbadwide": install.runtime_config(runtime, str(root), str(badwide), policy=str(policy)),
    }
    d = PrivateDaemon(base, runtimes=runtimes, default_runtime="dgplain")
    assert d.data_root == root
    try:
        d.start()
        d.import_busybox()
        yield HookDaemon(d, base)
    finally:
        d.remove()


class GuardedHooks:
    """A private dockerd guarded by the plugin, with dockguard-runtime as its default runtime;
    the plugin, the runtime and the hook programs share one policy (base/policy.toml)."""

    def __init__(self, g, base: Path):
        self.g = g
        self.d = g.daemon
        self.base = base
        self.root = g.daemon.data_root
        self.hooks = self.root / "hooks"
        self.specs = base / "specs"
        self.logs = base / "logs"
        self.policy = base / "policy.toml"

    def docker(self, *args, **kw):
        return self.g.docker(*args, **kw)

    def spec(self, name: str, **phases) -> str:
        return str(write_spec(self.specs / f"{name}.json", **phases))

    def count(self) -> int:
        return len(self.docker("ps", "-aq").stdout.split())


@pytest.fixture(scope="session")
def guarded_hooks_factory(guarded_factory):
    """make(rules=None, spec_dirs=None) -> GuardedHooks; `rules` overrides rule levels in the
    shared policy; `spec_dirs` replaces [base/specs] ([] grants anywhere root's alone)."""
    def make(rules: dict | None = None, spec_dirs: list | None = None) -> GuardedHooks:
        require_dockerd()
        base = trusted_tmpdir("dgg")
        root = base / "root"
        for d in (base / "specs", base / "logs", root):
            d.mkdir(mode=0o755)
        dirs = [base / "specs"] if spec_dirs is None else spec_dirs
        policy = write_root_file(base / "policy.toml", policy_toml(dirs, base / "logs", rules=rules))
        install.install_hooks(str(root), policy=str(policy))
        runtime = install.install_runtime(str(base / "bin"), docker_root=str(root))
        write_exec(root / "hooks" / "record", RECORD_SH)
        g = guarded_factory(policy=str(policy), base=base, default_runtime="dockguard",
                            runtimes={"dockguard": install.runtime_config(runtime, str(root), policy=str(policy))})
        return GuardedHooks(g, base)

    return make


@pytest.fixture(scope="session")
def guarded_hooks(guarded_hooks_factory) -> GuardedHooks:
    """The default rules (hook-spec = deny) over a policy granting base/specs."""
    return guarded_hooks_factory()
