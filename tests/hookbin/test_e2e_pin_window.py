"""The window between the runtime's pinning and runc's mount, held open on purpose (a private
dockerd whose runtime execs a runc that waits at `create` until the test lets it go).

A bind source removed in that window (the failure once seen under load in
test_hole8_swapped_bind_is_refused_at_a_restart_policy_restart: `mount
/run/dockguard/pins/7:/y ... no such file or directory`) is a removed directory the kernel will
not mount: the start must fail with the runtime's refusal naming the source, never with
runc's error about a staging path, and the container never sees what replaced the source.
"""
from __future__ import annotations

import json
import threading
import time

import pytest

from dockguard import util
from dockguard.harness.daemon import PrivateDaemon
from hookbin import install

from ..conftest import short_tmpdir
from .conftest import require_dockerd, trusted_tmpdir, write_root_file

pytestmark = pytest.mark.docker

GATED_RUNC = """#!/bin/sh
# runc, held at `create` (after dockguard-runtime pinned and staged the binds) until {go} exists
for a; do
  if [ "$a" = create ]; then
    : > {held}
    while [ ! -e {go} ]; do sleep 0.05; done
    rm -f {go} {held}
    break
  fi
done
exec {runc} "$@"
"""


@pytest.fixture(scope="module")
def gated():
    require_dockerd()
    base = trusted_tmpdir("dgw")
    held, go = base / "held", base / "go"
    runc = base / "gated-runc"
    runc.write_text(GATED_RUNC.format(held=held, go=go, runc=util.find_executable("runc", util.RUNC_CANDIDATES)))
    runc.chmod(0o755)
    d = PrivateDaemon(base)
    runtime = install.install_runtime(str(base / "bin"), runc=str(runc), docker_root=str(d.data_root))
    policy = write_root_file(base / "runtime-policy.toml", "")  # the default rules
    d.runtimes = {"dockguard": install.runtime_config(runtime, str(d.data_root), policy=str(policy))}
    d.default_runtime = "dockguard"
    d.start()
    try:
        d.import_busybox()
        yield d, held, go
    finally:
        d.remove()


def _release(held, go, before=None, timeout=60):
    """Wait until a create is held, run `before`, let it go."""
    deadline = time.monotonic() + timeout
    while not held.exists():
        assert time.monotonic() < deadline, "no create reached runc"
        time.sleep(0.05)
    if before:
        before()
    go.touch()


def _state(d, name):
    return json.loads(d.docker("inspect", name, check=True).stdout)[0]["State"]


@pytest.mark.parametrize("replace", ["removed", "symlink to /etc"])
def test_a_source_removed_while_runc_is_about_to_mount_it(gated, replace):
    d, held, go = gated
    tmp = short_tmpdir("dgwy")
    y = tmp / "y"
    y.mkdir(mode=0o755)
    name = "w" + replace.split()[0]
    first = threading.Thread(target=_release, args=(held, go))
    first.start()
    d.docker("run", "-d", "--name", name, "--restart", "always", "-v", f"{y}:/y", "busybox",
             "sh", "-c", "test -e /y/passwd && echo LEAK; sleep 1", check=True)
    first.join()

    def swap():
        y.rmdir()
        if replace != "removed":
            y.symlink_to("/etc")
    _release(held, go, swap)  # the restart: pinned y, runc not yet mounted
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and "dockguard-runtime" not in (_state(d, name).get("Error") or ""):
        if held.exists():
            go.touch()  # a later restart (should there be one) goes through too
        time.sleep(0.2)
    st = _state(d, name)
    logs = d.docker("logs", name).stdout
    d.docker("rm", "-f", name)
    err = st.get("Error") or ""
    assert "LEAK" not in logs
    assert f"dockguard-runtime: refused: bind source {y} for /y was removed after it was judged" in err, st
    assert "Safely:" in err and "/run/dockguard/pins" not in err, st
    assert not st["Running"]
