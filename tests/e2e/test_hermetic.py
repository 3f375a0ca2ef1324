"""Private daemons are hermetic (issue 9): nothing they do shows on the host, and nothing
stale on the host slows them down.

With a dead socket in the host's /run/docker/plugins and a spec in /etc/docker/plugins
pointing at a missing socket (both made here and removed after, leaving those directories
exactly as they were), a guarded private daemon still allows a new named volume at once,
and the host's links, iptables rules, mounts and plugin dirs are the same before and after.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from dockguard.harness.namespaces import KINDS, ns_id

PLUGIN_DIRS = ("/run/docker/plugins", "/etc/docker/plugins", "/usr/lib/docker/plugins")


def host_state() -> dict:
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    rules = None
    if shutil.which("iptables-save"):
        out = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        rules = [re.sub(r"\[\d+:\d+\]", "", ln) for ln in out.splitlines() if not ln.startswith("#")]
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(ln.split()[4] for ln in f)
    dirs = {d: sorted(os.listdir(d)) if os.path.isdir(d) else None for d in PLUGIN_DIRS + ("/etc/docker",)}
    return {"links": [re.sub(r"^\d+: ", "", ln) for ln in links.splitlines()],
            "iptables": rules, "mounts": mounts, "dirs": dirs}


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[:2]
        return f"{cmd!r} state={state[0]} ppid={state[1]}"
    except OSError as e:
        return f"({e})"


@contextmanager
def stale_plugins():
    """A dead socket in /run/docker/plugins and a spec naming a missing socket in
    /etc/docker/plugins; afterwards both directories are as they were."""
    tag = uuid.uuid4().hex[:8]
    made_dirs, made_files = [], []
    for d in ("/run/docker/plugins", "/etc/docker/plugins"):
        missing = []
        p = Path(d)
        while not p.exists():
            missing.append(p)
            p = p.parent
        for m in reversed(missing):
            m.mkdir()
            made_dirs.append(m)
    dead = Path(f"/run/docker/plugins/dg-dead-{tag}.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(dead))
    s.close()                       # the file stays, nothing listens: a dead plugin
    made_files.append(dead)
    spec = Path(f"/etc/docker/plugins/dg-stale-{tag}.spec")
    spec.write_text(f"unix:///run/docker/plugins/dg-missing-{tag}.sock\n")
    made_files.append(spec)
    try:
        yield dead, spec
    finally:
        for f in made_files:
            f.unlink(missing_ok=True)
        for d in reversed(made_dirs):
            d.rmdir()


def test_guarded_daemon_is_hermetic_and_fast_beside_stale_host_plugins(guarded_factory):
    before = host_state()
    with stale_plugins():
        with_stale = host_state()
        g = guarded_factory()
        d = g.daemon
        assert g.plugin.socket.parent == d.plugin_dir and not str(g.plugin.socket).startswith("/run/docker/")

        # a new named volume: dockerd looks it up through plugin discovery, which must not
        # wait on the host's stale entries (15 s there; the plugin gives up after 10 s)
        vol = f"newvol-{uuid.uuid4().hex[:6]}"
        t0 = time.monotonic()
        r = g.docker("run", "--rm", "-v", f"{vol}:/x", "busybox", "true")
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        assert took < 10, f"docker run -v {vol}:/x took {took:.1f}s"

        # what used to touch the host: the bridge and its veths, a user network, renaming a
        # running container (needs the bridge on 26), the containers' mounts
        name = f"herm-{uuid.uuid4().hex[:6]}"
        r = g.docker("run", "-d", "--name", name, "busybox", "sleep", "600")
        assert r.returncode == 0, r.stderr
        r = g.docker("rename", name, name + "-2")
        assert r.returncode == 0, r.stderr
        r = g.docker("network", "create", f"dgnet-{uuid.uuid4().hex[:6]}")
        assert r.returncode == 0, r.stderr
        inside = d.run_in_netns("ip", "-o", "link", "show").stdout
        assert "docker0" in inside and "veth" in inside, inside
        assert host_state() == with_stale, "the running daemon changed the host"

        ids = d.namespaces.ids()
        assert ids and ids["net"] != ns_id(os.getpid(), "net") and ids["mnt"] != ns_id(os.getpid(), "mnt")
        d.stop()
        g.plugin.stop()
        left = [int(p) for p in os.listdir("/proc") if p.isdigit()
                and any(ns_id(int(p), k) == ids[k] for k in KINDS)]
        assert left == [], "still inside the daemon's namespaces after stop: " + "; ".join(
            f"{pid} {_describe(pid)}" for pid in left)
    assert host_state() == before
