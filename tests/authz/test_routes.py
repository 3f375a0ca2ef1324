"""authz.routes: method + cleaned path -> action, as gorilla/mux matches dockerd's routes."""
from __future__ import annotations

import pytest

from authz.routes import BODY_ACTIONS, LIFECYCLE_ACTIONS, TABLE, route
from authz.rules import all_rules


@pytest.mark.parametrize("method,path,action,name", [
    ("POST", "/containers/create", "container.create", ""),
    ("POST", "/containers/abc/start", "container.start", "abc"),
    ("POST", "/containers/abc/exec", "exec.create", "abc"),
    ("DELETE", "/containers/abc", "container.delete", "abc"),
    ("PUT", "/containers/abc/archive", "container.archive_put", "abc"),
    ("GET", "/containers/abc/archive", "container.archive_get", "abc"),   # copies reach the mounts
    ("HEAD", "/containers/abc/archive", "container.archive_head", "abc"),
    ("GET", "/containers/abc/attach/ws", "container.attach", "abc"),
    ("POST", "/containers/abc/rename", "container.rename", "abc"),
    ("POST", "/exec/e1/start", "exec.start", "e1"),
    ("POST", "/volumes/create", "volume.create", ""),
    ("POST", "/plugins/pull", "plugin.pull", ""),
    ("POST", "/plugins/vieux/sshfs:latest/set", "plugin.set", "vieux/sshfs:latest"),
    ("DELETE", "/plugins/vieux/sshfs:latest", "plugin.remove", "vieux/sshfs:latest"),
    ("POST", "/plugins/a/b/disable", "plugin.disable", "a/b"),
    ("POST", "/services/create", "service.create", ""),
    ("POST", "/services/s1/update", "service.update", "s1"),
    ("POST", "/build", "build", ""),
    ("POST", "/images/library/busybox/tag", "image.tag", "library/busybox"),
])
def test_routes(method, path, action, name):
    assert route(method, path) == (action, name)


def test_name_is_greedy_like_mux():
    # {name:.*} matches across slashes, as far as it can
    assert route("DELETE", "/containers/a/b/c") == ("container.delete", "a/b/c")
    assert route("POST", "/containers/x/start/start") == ("container.start", "x/start")
    assert route("POST", "/containers/a/stop/restart") == ("container.restart", "a/stop")
    assert route("POST", "/containers/create/start") == ("container.start", "create")
    assert route("POST", "/containers//start") == ("container.start", "")
    assert route("POST", "/containers/a\nb/kill") == ("container.kill", "a\nb")


def test_first_match_wins_in_registration_order():
    # /containers/create is registered before /containers/{name}/...
    assert route("POST", "/containers/create")[0] == "container.create"
    assert route("POST", "/containers/prune")[0] == "container.prune"
    assert route("POST", "/build/prune")[0] == "build.prune"


@pytest.mark.parametrize("method,path", [
    ("GET", "/_ping"), ("HEAD", "/_ping"), ("GET", "/containers/json"),
    ("GET", "/containers/abc/json"), ("GET", "/info"),
    ("GET", "/version"), ("GET", "/events"), ("GET", "/images/json"),
    ("GET", "/plugins"), ("GET", "/system/df"), ("GET", "/distribution/busybox/json"),
])
def test_reads(method, path):
    assert route(method, path) == ("read", "")


@pytest.mark.parametrize("method,path", [
    ("GET", "/nonsense"), ("GET", "/"), ("POST", "/containers/x/checkpoints"),
    ("POST", "/containers/create/"),  # mux does not match a trailing slash
    ("PATCH", "/containers/x"), ("POST", "/containers/json"), ("PUT", "/containers/x"),
    ("POST", "/_ping"), ("post", "/containers/create"), ("GET", "*"),
])
def test_unknown(method, path):
    assert route(method, path) == ("unknown", "")


def test_every_rule_action_is_routable():
    routed = {a for _m, _p, a in TABLE} | {"read", "unknown"}
    for r in all_rules().values():
        assert r.actions <= routed, (r.id, r.actions - routed)
    assert BODY_ACTIONS <= routed and LIFECYCLE_ACTIONS <= routed
