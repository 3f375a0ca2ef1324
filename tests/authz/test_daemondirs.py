"""authz.daemondirs: the daemon's directories from its command line and daemon.json (plain
data), and found through the process serving a socket (real processes, no Docker)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from authz import daemondirs as dd
from authz.context import DaemonClient, LookupFailed


@pytest.mark.parametrize("argv,want", [
    (["dockerd"], ("/var/lib/docker", "/var/run/docker", "/run/containerd/containerd.sock")),
    (["dockerd", "--data-root", "/d", "--exec-root", "/e", "--containerd", "/c.sock"], ("/d", "/e", "/c.sock")),
    (["dockerd", "--data-root=/d", "--exec-root=/e"], ("/d", "/e", "/run/containerd/containerd.sock")),
    (["dockerd", "-g", "/old"], ("/old", "/var/run/docker", "/run/containerd/containerd.sock")),
    (["dockerd", "-g/old2", "--graph=/old3"], ("/old3", "/var/run/docker", "/run/containerd/containerd.sock")),
    (["dockerd", "--exec-root", "/a", "--exec-root", "/b"], ("/var/lib/docker", "/b", "/run/containerd/containerd.sock")),
    (["dockerd", "--containerd-namespace", "x", "--exec-root", "rel"], ("/var/lib/docker", "/cwd/rel",
                                                                         "/run/containerd/containerd.sock")),
    (["dockerd", "--", "--exec-root", "/nope"], ("/var/lib/docker", "/var/run/docker", "/run/containerd/containerd.sock")),
])
def test_flags(argv, want):
    d = dd.dockerd_dirs(argv, None, cwd="/cwd")
    assert (d.data_root, d.exec_root, d.containerd_sock) == want


def test_config_file_and_flags_win():
    cfg = {"data-root": "/cd", "exec-root": "/ce", "containerd": "/cc.sock"}
    d = dd.dockerd_dirs(["dockerd"], cfg)
    assert (d.data_root, d.exec_root, d.containerd_sock) == ("/cd", "/ce", "/cc.sock")
    d = dd.dockerd_dirs(["dockerd", "--exec-root", "/fe"], cfg)
    assert d.exec_root == "/fe" and d.data_root == "/cd"
    assert dd.dockerd_dirs(["dockerd"], {"graph": "/g"}).data_root == "/g"
    assert dd.dockerd_dirs(["dockerd"], {"exec-root": 5}).exec_root == "/var/run/docker"  # bad value: default
    assert dd.dockerd_dirs(["dockerd"], ["not", "a", "dict"]).exec_root == "/var/run/docker"


def test_config_file_location():
    assert dd.config_file(["dockerd"]) == "/etc/docker/daemon.json"
    assert dd.config_file(["dockerd", "--config-file", "c.json"], cwd="/x") == "/x/c.json"
    assert dd.config_file(["dockerd"], env={"HOME": "/home/u"}, euid=1000) == "/home/u/.config/docker/daemon.json"


def test_rootless_defaults():
    env = {"XDG_RUNTIME_DIR": "/run/user/1000", "HOME": "/home/u"}
    d = dd.dockerd_dirs(["dockerd"], None, env=env, euid=1000)
    assert (d.data_root, d.exec_root) == ("/home/u/.local/share/docker", "/run/user/1000/docker")


def test_containerd_dirs():
    assert dd.containerd_dirs(["containerd"], None) == ("/var/lib/containerd", "/run/containerd")
    assert dd.containerd_dirs(["containerd", "--root", "/r", "--state=/s"], None) == ("/r", "/s")
    assert dd.containerd_dirs(["containerd"], {"root": "/cr", "state": "/cs"}) == ("/cr", "/cs")
    assert dd.containerd_config_file(["containerd", "-c", "/x.toml"]) == "/x.toml"
    assert dd.containerd_config_file(["containerd", "--config=/y.toml"]) == "/y.toml"


# ---- the edge, with stand-in processes ----

LISTENER = """
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
if len(sys.argv) > 2 and sys.argv[2] == "--activate":  # hand the socket to a child, as systemd does
    os.set_inheritable(s.fileno(), True)
    os.spawnv(os.P_NOWAIT, sys.argv[5], [sys.argv[5], "-c", "import time; time.sleep(120)",
                                         "--data-root", sys.argv[3], "--exec-root", sys.argv[4]])
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def named(tmp_path):
    """A python interpreter whose argv[0] says dockerd (or anything else)."""
    def make(name):
        link = tmp_path / "bin" / name
        link.parent.mkdir(exist_ok=True)
        if not link.exists():
            link.symlink_to(os.path.realpath(sys.executable))
        return str(link)
    return make


@pytest.fixture
def spawn(named):
    procs = []

    def start(*args, name="dockerd"):
        p = subprocess.Popen([named(name), "-c", LISTENER, *args], stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout.readline().strip() == "ready"
        return p

    yield start
    for p in procs:
        # the activated child shares the process group of nobody else we know: find it by its parent
        for child in _children(p.pid):
            os.kill(child, 9)
        p.kill()
        p.wait()


def _children(pid):
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(name))
            except OSError:
                pass
    return out


def test_peer_pid_is_the_listener(tmp_path, spawn):
    sock = str(tmp_path / "s.sock")
    p = spawn(sock, "--data-root", "/d")
    assert dd.peer_pid(sock) == p.pid
    assert dd.peer_pid(str(tmp_path / "none.sock")) is None


def test_find_dockerd_direct(tmp_path, spawn):
    sock = str(tmp_path / "d.sock")
    data = tmp_path / "root"
    data.mkdir()
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"exec-root": str(tmp_path / "exec")}))
    spawn(sock, "--data-root", str(data), "--config-file", str(cfg))
    d = dd.find_dockerd(sock, str(data))
    assert d.exec_root == str(tmp_path / "exec") and d.config_file == str(cfg)
    with pytest.raises(dd.NotFound, match="has the daemon's data-root /elsewhere"):
        dd.find_dockerd(sock, "/elsewhere")


def test_find_dockerd_socket_activated(tmp_path, spawn, named):
    """The listener (systemd's stand-in) is not the daemon: the process it handed the socket to is."""
    sock = str(tmp_path / "a.sock")
    data, exe = str(tmp_path / "root"), str(tmp_path / "exec")
    spawn(sock, "--activate", data, exe, named("dockerd"), name="systemd")
    for _ in range(100):  # the child needs a moment to exist
        try:
            d = dd.find_dockerd(sock, data)
            break
        except dd.NotFound:
            time.sleep(0.1)
    else:
        pytest.fail("the activated child was not found")
    assert d.exec_root == exe


def test_only_a_dockerd_counts(tmp_path, spawn):
    """A listener that is not dockerd (systemd, with no daemon behind it) is not taken for one,
    though dockerd's defaults read from its command line would match the data-root."""
    sock = str(tmp_path / "n.sock")
    spawn(sock, name="systemd")
    with pytest.raises(dd.NotFound, match=r"\(systemd, not dockerd\)"):
        dd.find_dockerd(sock, "/var/lib/docker")
    assert dd.is_dockerd(["/usr/sbin/dockerd", "-H", "fd://"]) and not dd.is_dockerd(["/sbin/init"])


def test_find_containerd(tmp_path, spawn):
    sock = str(tmp_path / "c.sock")
    cfg = tmp_path / "config.toml"
    cfg.write_text('root = "/srv/ctd-root"\nstate = "/srv/ctd-state"\n')
    spawn(sock, "--config", str(cfg))
    assert dd.find_containerd(sock) == ("/srv/ctd-root", "/srv/ctd-state")
    assert dd.find_containerd(str(tmp_path / "none.sock")) is None


def test_listening_inodes_of_a_socket(tmp_path):
    sock = str(tmp_path / "l.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock)
    s.listen(1)
    try:
        inodes = dd.listening_inodes(sock)
        assert inodes and os.getpid() in dd.socket_holders(inodes)
    finally:
        s.close()


# ---- DaemonClient.daemon_dirs: the edge the rules ask through ----

class RootedClient(DaemonClient):
    def __init__(self, sock, root):
        super().__init__(base_url=f"unix://{sock}")
        self.root = root

    def docker_root(self):
        return self.root


def test_daemon_client_daemon_dirs(tmp_path, spawn):
    sock = str(tmp_path / "dc.sock")
    data, exe = tmp_path / "root", tmp_path / "exec"
    spawn(sock, "--data-root", str(data), "--exec-root", str(exe), "--containerd", str(tmp_path / "none.sock"))
    client = RootedClient(sock, str(data))
    dirs = client.daemon_dirs()
    assert {str(data), str(exe), str(tmp_path / "none.sock")} <= dirs
    assert client.daemon_dirs() is dirs  # once per process
    with pytest.raises(LookupFailed, match="could not find the daemon's exec-root"):
        RootedClient(sock, "/elsewhere").daemon_dirs()
    with pytest.raises(LookupFailed, match="only through its unix socket"):
        DaemonClient(base_url="tcp://127.0.0.1:2375").daemon_dirs()


def test_unknown_working_directory():
    assert dd.dockerd_dirs(["dockerd", "--exec-root", "/abs"], None, cwd=None).exec_root == "/abs"
    with pytest.raises(dd.NotFound, match="relative path 'rel' cannot be resolved"):
        dd.dockerd_dirs(["dockerd", "--exec-root", "rel"], None, cwd=None)
    with pytest.raises(dd.NotFound, match="relative path 'x.json'"):
        dd.config_file(["dockerd", "--config-file", "x.json"], cwd=None)


def test_read_config(tmp_path):
    pid = os.getpid()
    f = tmp_path / "daemon.json"
    assert dd.read_config(pid, str(f), json.loads) is None  # absent: no config
    f.write_text('{"exec-root": "/e"}')
    assert dd.read_config(pid, str(f), json.loads) == {"exec-root": "/e"}
    f.write_text("{not json")
    with pytest.raises(dd.NotFound, match="cannot parse"):
        dd.read_config(pid, str(f), json.loads)
    with pytest.raises(dd.NotFound, match="cannot read"):
        dd.read_config(pid, str(tmp_path), json.loads)  # a directory: exists, unreadable as a file


def test_found_by_process_scan_when_holders_are_hidden(tmp_path, spawn, named, monkeypatch):
    """Under the shipped unit (PrivateNetwork, no ptrace access) neither /proc/net/unix nor
    other processes' fds are visible: a socket-activated daemon is found among the host's
    root dockerd processes."""
    monkeypatch.setattr(dd, "socket_holders", lambda inodes: [])
    sock = str(tmp_path / "h.sock")
    data, exe = str(tmp_path / "root"), str(tmp_path / "exec")
    spawn(sock, "--activate", data, exe, named("dockerd"), name="systemd")
    for _ in range(100):
        try:
            assert dd.find_dockerd(sock, data).exec_root == exe
            break
        except dd.NotFound:
            time.sleep(0.1)
    else:
        pytest.fail("not found by the process scan")
    assert all(dd.read_proc(p).host_pidns for p in dd.dockerd_processes())
