"""unknown-route: routes dockguard has no rules for are audited (or denied by policy)."""
from __future__ import annotations

import pytest

from authz import policy as policies

from .helpers import allowed, decide, denied_by


@pytest.mark.parametrize("method,uri", [("POST", "/v1.41/containers/x/checkpoints"), ("GET", "/nonsense"),
                                        ("PATCH", "/containers/x"), ("POST", "/containers/create/")])
def test_unknown_route_is_audited(method, uri):
    out = decide(method, uri, {} if method != "GET" else None)
    allowed(out)
    assert out.record["decision"] == "audit" and out.record["rule"] == ["unknown-route"]
    assert out.record["action"] == "unknown"


def test_unknown_route_message_names_the_cleaned_path():
    out = decide("POST", "/v1.41//containers/./x/checkpoints?a=1", {})
    assert "POST /containers/x/checkpoints" in out.record["msg"]


def test_unknown_route_deny_by_policy(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[rules]\nunknown-route = "deny"\n')
    pol = policies.load(p)
    msg = denied_by(decide("POST", "/v1.41/containers/x/checkpoints", {}, policy=pol), "unknown-route")
    assert "POST /containers/x/checkpoints" in msg
    allowed(decide("GET", "/v1.41/info", policy=pol))
    allowed(decide("POST", "/v1.41/networks/create", {"Name": "n"}, policy=pol))


def test_known_routes_without_rules_are_plain_allows():
    for method, uri in (("POST", "/networks/create"), ("POST", "/images/create?fromImage=x"),
                        ("POST", "/containers/x/pause"), ("POST", "/exec/e/start")):
        out = decide(method, uri, {})
        allowed(out)
        assert out.record["decision"] == "allow" and out.record["rule"] == []
