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
