"""The components still do their job inside their unit's sandbox (emulated without systemd).

systemd applies a unit's CapabilityBoundingSet, NoNewPrivileges, SystemCallFilter (+
SystemCallErrorNumber), RestrictAddressFamilies and PrivateNetwork with plain kernel
interfaces; this test applies the same ones, read from the installed unit files, to the
plugin and to healthd (prctl, a libseccomp filter built from `systemd-analyze syscall-filter`,
a new network namespace) and drives them through a private dockerd: allowed and refused
requests (a custom seccomp profile compiled by libseccomp, a policy reload), and healthd's
probes inside a container's network namespace. ProtectSystem=strict is emulated too (the
whole tree read-only in a mount namespace, but the unit's Runtime/StateDirectory);
ProtectHome, PrivateTmp, PrivateDevices, ProtectKernel*, ProtectProc are not.
"""
import ctypes
import errno
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dockguard.harness.plugin import PLUGIN_DIR, activate
from dockguard.harness.daemon import PrivateDaemon
from dockguard.install import data_text
from tests.conftest import require_dockerd, short_tmpdir

pytestmark = pytest.mark.docker

CLONE_NEWNET, CLONE_NEWNS = 0x40000000, 0x00020000
MS_REC, MS_PRIVATE, MS_BIND, MS_REMOUNT = 0x4000, 0x40000, 0x1000, 0x20
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY, SYS_MOUNT_SETATTR = -100, 0x8000, 0x1, 442
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
CAPS = {"CAP_DAC_READ_SEARCH": 2, "CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21}
FAMILIES = {"AF_UNIX": socket.AF_UNIX, "AF_INET": socket.AF_INET, "AF_INET6": socket.AF_INET6}


@functools.cache
def expand(name: str) -> frozenset[str]:
    """A syscall group (or a single call) as systemd-analyze lists it, groups expanded."""
    if not name.startswith("@"):
        return frozenset({name})
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True,
                         text=True, check=True).stdout
    calls: set[str] = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        calls |= expand(item)
    return frozenset(calls)


def settings(unit_text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit_text.splitlines():
        m = re.match(r"^(\w+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2).strip())
    return out


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def sandbox(unit: str, listen_fd: int | None = None, writable: tuple[str, ...] = ()):
    """A preexec_fn applying the unit's kernel-level sandbox to the child (and, like
    systemd, passing a listening socket as fd 3). ProtectSystem=strict: the whole tree
    read-only in a mount namespace of its own, but `writable` (its Runtime/StateDirectory)."""
    import pyseccomp
    s = settings(data_text(unit))
    allowed: set[str] = set()
    for value in s["SystemCallFilter"]:
        names = value.split()
        if value.startswith("~"):
            names[0] = names[0][1:]
            for n in names:
                allowed -= expand(n)
        else:
            for n in names:
                allowed |= expand(n)
    err = getattr(errno, s["SystemCallErrorNumber"][0])
    families = [FAMILIES[f] for f in s["RestrictAddressFamilies"][0].split()]
    filt = pyseccomp.SyscallFilter(pyseccomp.ERRNO(err))
    for call in sorted(allowed - {"socket"}):
        try:
            filt.add_rule(pyseccomp.ALLOW, call)
        except (ValueError, OSError, RuntimeError):
            pass  # not a call on this architecture
    for fam in families:
        filt.add_rule(pyseccomp.ALLOW, "socket", pyseccomp.Arg(0, pyseccomp.EQ, fam))
    keep = {CAPS[c] for c in s["CapabilityBoundingSet"][0].split()}
    private_net = s.get("PrivateNetwork") == ["yes"]
    assert s["NoNewPrivileges"] == ["yes"]
    libc = ctypes.CDLL(None, use_errno=True)

    def check(rc, what):
        if rc != 0:
            raise OSError(ctypes.get_errno(), what)

    def preexec():
        os.setsid()
        if listen_fd is not None:
            os.dup2(listen_fd, 3)
        if s.get("ProtectSystem") == ["strict"]:
            check(libc.unshare(CLONE_NEWNS), "unshare mount ns")
            check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make private")
            for w in writable:
                check(libc.mount(w.encode(), w.encode(), None, MS_BIND, None), "bind")
            attr = MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
            check(libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE,
                               ctypes.byref(attr), ctypes.sizeof(attr)), "mount_setattr ro")
            rw = MountAttr(0, MOUNT_ATTR_RDONLY, 0, 0)
            for w in writable:
                check(libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, w.encode(), 0,
                                   ctypes.byref(rw), ctypes.sizeof(rw)), "mount_setattr rw")
        if private_net and libc.unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare")
        for cap in range(64):
            if cap not in keep and libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and cap < 41:
                raise OSError(ctypes.get_errno(), f"capbset drop {cap}")
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "no_new_privs")
        filt.load()

    return preexec


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_plugin_works_inside_its_sandbox(tmp_path):
    require_dockerd()
    base = short_tmpdir("dgh")
    name = "dg-test-" + base.name
    d = PrivateDaemon(base, authz_plugins=[name])
    sock = d.plugin_dir / f"{name}.sock"          # the daemon's own discovery dir, not the host's
    policy = base / "policy.toml"
    policy.write_text('[rules]\nkill = "audit"\n')
    sock.parent.mkdir(parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)   # the .socket unit's part
    listener.bind(str(sock))
    listener.listen(128)
    log = open(base / "plugin.log", "wb")
    plugin = subprocess.Popen(
        ["/bin/sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh",
         sys.executable, "-m", "dockguard.cli", "authz", "serve",
         "--plugin-name", "dockguard", "--docker-host", d.host, "--policy", str(policy),
         "--worker-tmp-dir", str(base)],
        stdout=log, stderr=subprocess.STDOUT, pass_fds=(3,),
        preexec_fn=sandbox("dockguard-authz.service", listener.fileno(), writable=(str(base),)))
    log.close()
    plugin_log = lambda: (base / "plugin.log").read_text(errors="replace")  # noqa: E731
    try:
        wait(lambda: sock.exists() and activate(sock) or plugin.poll() is not None, 60, "the plugin")
        assert plugin.poll() is None, plugin_log()
        caps = Path(f"/proc/{plugin.pid}/status").read_text()
        assert re.search(r"^CapBnd:\s+0+4$", caps, re.M), caps          # CAP_DAC_READ_SEARCH only
        assert os.readlink(f"/proc/{plugin.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        mounts = Path(f"/proc/{plugin.pid}/mounts").read_text().splitlines()
        root = [m for m in mounts if m.split()[1] == "/"][-1]
        assert root.split()[3].startswith("ro"), root
        d.start()
        d.import_busybox()
        assert d.docker("run", "--rm", "busybox", "true").returncode == 0, plugin_log()
        res = d.docker("run", "--rm", "--privileged", "busybox", "true")
        assert res.returncode != 0 and "[privileged]" in res.stderr, res.stderr
        res = d.docker("run", "--rm", "-v", "/etc:/x", "busybox", "true")
        assert res.returncode != 0 and "[sensitive-mount]" in res.stderr, res.stderr
        profile = base / "seccomp.json"
        profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}))
        res = d.docker("run", "--rm", "--security-opt", f"seccomp={profile}", "busybox", "true")
        assert res.returncode != 0 and "[seccomp-profile]" in res.stderr, res.stderr + plugin_log()
        # a lookup (the container's state) from inside the sandbox, then a reload
        assert d.docker("run", "-d", "--name", "kk", "busybox", "sleep", "100").returncode == 0
        assert d.docker("kill", "kk").returncode == 0                       # kill = audit
        assert d.docker("rm", "-f", "kk").returncode != 0                   # force-remove
        policy.write_text('[rules]\nkill = "deny"\n')
        plugin.send_signal(signal.SIGHUP)
        wait(lambda: "policy reloaded" in plugin_log(), 30, "the reload")
        assert d.docker("start", "kk").returncode == 0
        res = d.docker("kill", "kk")
        assert res.returncode != 0 and "[kill]" in res.stderr, res.stderr
        assert "Traceback" not in plugin_log() and "Operation not permitted" not in plugin_log(), plugin_log()
    finally:
        d.remove()
        if plugin.poll() is None:
            os.killpg(plugin.pid, signal.SIGTERM)
            plugin.wait(30)
        listener.close()
        sock.unlink(missing_ok=True)


def test_healthd_probes_inside_its_sandbox(plain_daemon, tmp_path):
    state = tmp_path / "state"
    log = open(tmp_path / "healthd.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockguard.cli", "healthd", "run", "--docker-host", plain_daemon.host,
         "--state-dir", str(state), "--log-flush", "0"],
        stdout=log, stderr=subprocess.STDOUT,
        preexec_fn=sandbox("dockguard-healthd.service", writable=(str(tmp_path),)))
    log.close()
    name = f"hh-{os.getpid()}"
    P = "dockguard.health."
    try:
        caps = Path(f"/proc/{proc.pid}/status").read_text()
        assert re.search(r"^CapBnd:\s+0+280000$", caps, re.M), caps      # SYS_ADMIN + SYS_PTRACE
        res = plain_daemon.docker("run", "-d", "--name", name, "-l", f"{P}tcp=8080",
                                  "-l", f"{P}interval=200ms", "-l", f"{P}retries=1",
                                  "busybox", "sh", "-c", "nc -ll -p 8080 -e true")
        assert res.returncode == 0, res.stderr
        res = plain_daemon.docker("run", "-d", "--name", name + "x", "-l", f"{P}cmd=test -d /",
                                  "-l", f"{P}interval=200ms", "busybox", "sleep", "100")
        assert res.returncode == 0, res.stderr

        def status(name=name):
            for f in state.glob("*.json"):
                try:
                    rec = json.loads(f.read_text())
                except ValueError:
                    continue
                if rec.get("Name", "").lstrip("/") == name:
                    return (rec.get("Health") or {}).get("Status")
            return None

        wait(lambda: status() == "healthy" or proc.poll() is not None, 30, "a healthy tcp probe")
        wait(lambda: status(name + "x") == "healthy" or proc.poll() is not None, 30, "a healthy exec check")
        assert proc.poll() is None, (tmp_path / "healthd.log").read_text()
        text = (tmp_path / "healthd.log").read_text()
        assert "Operation not permitted" not in text and "Traceback" not in text, text
    finally:
        plain_daemon.docker("rm", "-f", name, name + "x")
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
