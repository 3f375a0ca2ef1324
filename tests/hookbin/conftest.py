"""Fixtures for hookbin: a fake Docker root with a hooks dir, and a private dockerd whose
runtimes are dockguard-runtime (installed for real) with and without a daemon-wide spec."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dockguard.daemon import PrivateDaemon
from hookbin import install

from ..conftest import IN_CI, require_dockerd, short_tmpdir

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
def docker_root(tmp_path) -> Path:
    """A Docker-root-like directory with hooks/ holding a good hook program."""
    root = tmp_path / "root"
    (root / "hooks").mkdir(parents=True)
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

    def spec(self, name: str, **phases) -> str:
        return str(write_spec(self.base / f"{name}.json", **phases))

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
    base = short_tmpdir("dgh")
    root = base / "root"
    hooks = root / "hooks"
    install.install_hooks(str(root))
    runtime = install.install_runtime(str(base / "bin"), docker_root=str(root))
    write_exec(hooks / "record", RECORD_SH)
    write_exec(hooks / "fail", FAIL_SH)
    write_exec(hooks / "sleepy", SLEEP_SH)
    wide = write_spec(base / "wide.json",
                      prestart=[hook(hooks / "record", "wide-pre", base / "wide.log")],
                      poststop=[hook(hooks / "record", "wide-stop", base / "wide.log")])
    badwide = write_spec(base / "badwide.json", prestart=[hook(hooks / "record", "x", "/dev/null", timeout=0)])
    runtimes = {
        "dgplain": install.runtime_config(runtime, str(root)),
        "dgwide": install.runtime_config(runtime, str(root), str(wide)),
        "dgbadwide": install.runtime_config(runtime, str(root), str(badwide)),
    }
    d = PrivateDaemon(base, runtimes=runtimes, default_runtime="dgplain")
    assert d.data_root == root
    try:
        d.start()
        d.import_busybox()
        yield HookDaemon(d, base)
    finally:
        d.remove()
