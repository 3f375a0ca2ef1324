"""authz.context: memoised lookups, static sensitive paths, failures as LookupFailed (no Docker)."""
from __future__ import annotations

import os

import pytest

from authz.context import DEFAULT_SOCKETS, DaemonClient, HostFacts, LookupFailed, RequestContext

from .helpers import default_policy


class CountingDaemon(DaemonClient):
    """DaemonClient with its lookups replaced by counted plain data (its path caches kept)."""

    def __init__(self, root="/var/lib/docker", sock="/run/custom/docker.sock"):
        super().__init__()
        self.calls = []
        self.root = root
        self.sock = sock

    def container(self, ref):
        self.calls.append(("container", ref))
        return {"Id": ref}

    def container_ids(self):
        self.calls.append(("ids",))
        return ["a"]

    def image_config(self, ref):
        self.calls.append(("image", ref))
        return {}

    def plugin(self, name):
        self.calls.append(("plugin", name))
        return None

    def volume(self, name):
        self.calls.append(("volume", name))
        return None

    def docker_root(self):
        self.calls.append(("root",))
        return self.root

    def socket_path(self):
        return self.sock


def test_lookups_are_memoised_per_request():
    d = CountingDaemon()
    ctx = RequestContext(default_policy().lists, d, HostFacts())
    for _ in range(3):
        ctx.container("web")
        ctx.container_ids()
        ctx.image_config("busybox")
        ctx.plugin("p")
    assert d.calls == [("container", "web"), ("ids",), ("image", "busybox"), ("plugin", "p")]
    ctx2 = RequestContext(default_policy().lists, d, HostFacts())
    ctx2.container("web")
    assert d.calls.count(("container", "web")) == 2  # a new request asks again


def test_static_paths_include_the_sockets_without_asking_the_daemon():
    d = CountingDaemon()
    ctx = RequestContext(default_policy().lists, d, HostFacts())
    paths = ctx.sensitive_paths()
    assert "/run/custom/docker.sock" in paths and "/etc" in paths
    for s in DEFAULT_SOCKETS:
        assert s in paths
    assert d.calls == []
    assert ctx.daemon_paths() == {"/var/lib/docker", os.path.realpath("/var/lib/docker")}
    assert d.calls == [("root",)]


def test_self_names():
    ctx = RequestContext(default_policy().lists, CountingDaemon(), HostFacts(), frozenset({"dg"}))
    assert ctx.self_names() == {"dg"}


def test_a_daemon_that_cannot_be_reached_is_lookup_failed(tmp_path):
    client = DaemonClient(base_url=f"unix://{tmp_path}/nowhere.sock", timeout=1)
    with pytest.raises(LookupFailed, match="could not look up container 'web'"):
        client.container("web")
    with pytest.raises(LookupFailed, match="could not look up the daemon's info"):
        client.docker_root()
    assert client.socket_path() == f"{tmp_path}/nowhere.sock"
    assert DaemonClient(base_url="tcp://1.2.3.4:2375").socket_path() is None


def test_host_facts_on_this_host(tmp_path):
    h = HostFacts()
    assert h.device_node("/dev/null") == ("c", 1, 3)
    assert h.device_node(str(tmp_path)) == ("d", 0, 0)
    f = tmp_path / "f"
    f.write_text("x")
    assert h.device_node(str(f)) is None and h.is_regular_file(str(f))
    assert not h.is_regular_file(str(tmp_path)) and not h.is_regular_file(str(tmp_path / "nope"))
    link = tmp_path / "link"
    link.symlink_to("/etc")
    assert h.realpath(str(link)) == "/etc"
    assert h.scheduler("/dev/null") is None
    assert h.realpath("\0") == ""  # an unusable path is no path, not a crash
    assert isinstance(h.blkio_weight_supported(), bool)


class VolumeDaemon(DaemonClient):
    """DaemonClient over a fake docker root; its API answers are recorded, never sent."""

    def __init__(self, root):
        super().__init__()
        self.root = str(root)
        self.asked = []

    def docker_root(self):
        return self.root

    def _call(self, what, fn, not_found=None):
        self.asked.append(what)
        return {"Name": what, "Driver": "local"}


def _volume_root(tmp_path, dirs=(), meta=b"\x00bolt\x00volumes\x00"):
    vols = tmp_path / "volumes"
    vols.mkdir()
    for d in dirs:
        (vols / d).mkdir()
    if meta is not None:
        (vols / "metadata.db").write_bytes(meta)
    return tmp_path


def test_a_volume_dockerd_surely_lacks_is_not_asked(tmp_path):
    """A new name: no local directory, not in metadata.db: None without asking dockerd (its
    answer would wait on plugin discovery)."""
    d = VolumeDaemon(_volume_root(tmp_path))
    assert d.volume("newvol") is None and d.asked == []


@pytest.mark.parametrize("name, dirs, meta", [
    ("bad", ["bad"], b""),                              # the local driver holds it
    ("plug", [], b"\x00volumes\x00plug\x00{...}"),      # recorded for some driver
    ("vol", [], b"xxvolumexx"),                         # a substring: asked (only slower)
    ("ab", [], None),                                   # no metadata.db to read
    ("../x", [], b""), ("a/b", [], b""), ("x", [], b""), ("ok\n", [], b""),  # not a volume name
])
def test_a_volume_that_may_exist_is_asked(tmp_path, name, dirs, meta):
    d = VolumeDaemon(_volume_root(tmp_path, dirs, meta))
    assert d.volume(name) is not None and d.asked == [f"volume {name!r}"]


def test_no_volume_directory_means_ask(tmp_path):
    """The plugin cannot see the daemon's root (another mount namespace): ask dockerd."""
    d = VolumeDaemon(tmp_path / "elsewhere")
    assert d.volume("newvol") is not None
    (tmp_path / "volumes").symlink_to("/etc")  # a link is not the local driver's root
    d = VolumeDaemon(tmp_path)
    assert d.volume("newvol") is not None
