"""authz.app: Docker's plugin protocol over Flask; a denial for anything wrong, never a 500."""
from __future__ import annotations

import json

import pytest

from authz.app import CONTENT_TYPE, create_app
from authz.engine import MAX_BODY

from .helpers import FakeContext, envelope, hc, make_engine


@pytest.fixture
def engine():
    e, _stream = make_engine()
    return e


@pytest.fixture
def client(engine):
    app = create_app(engine)
    app.testing = False  # exceptions handled as in production
    return app.test_client()


def reply(resp):
    assert resp.status_code == 200, resp.data
    assert resp.content_type == CONTENT_TYPE
    return json.loads(resp.data)


def test_activate(client):
    assert reply(client.post("/Plugin.Activate")) == {"Implements": ["authz"]}
    assert reply(client.post("/Plugin.Activate", data=b"garbage")) == {"Implements": ["authz"]}


def test_authzreq_allow_and_deny(client):
    assert reply(client.post("/AuthZPlugin.AuthZReq", data=envelope("GET", "/_ping"))) == \
        {"Allow": True, "Msg": "", "Err": ""}
    r = reply(client.post("/AuthZPlugin.AuthZReq", data=envelope("POST", "/containers/create", hc(Privileged=True))))
    assert r["Allow"] is False and "[privileged]" in r["Msg"] and r["Err"] == ""


@pytest.mark.parametrize("payload", [b"", b"not json", b"[]", b'{"RequestMethod": 5}', b"\xff\xfe",
                                     b'{"RequestMethod":"POST","RequestUri":"/containers/create","RequestBody":"!!"}',
                                     b'{"RequestMethod":"POST","RequestUri":"/containers/create"}'])
def test_authzreq_garbage_is_a_denial(client, payload):
    r = reply(client.post("/AuthZPlugin.AuthZReq", data=payload))
    assert r["Allow"] is False and "malformed-request" in r["Msg"]


@pytest.mark.parametrize("payload", [b"", b"not json", b"[]", envelope("POST", "/containers/x/stop", status=204)])
def test_authzres_always_allows(client, payload):
    assert reply(client.post("/AuthZPlugin.AuthZRes", data=payload)) == {"Allow": True, "Msg": "", "Err": ""}


def test_unknown_endpoint_is_404(client):
    resp = client.post("/AuthZPlugin.Nope", data=b"{}")
    assert resp.status_code == 404 and resp.content_type == CONTENT_TYPE
    assert "no such plugin endpoint" in json.loads(resp.data)["Err"]


@pytest.mark.parametrize("path", ["/Plugin.Activate", "/AuthZPlugin.AuthZReq", "/AuthZPlugin.AuthZRes"])
def test_wrong_method_is_405(client, path):
    resp = client.get(path)
    assert resp.status_code == 405 and resp.content_type == CONTENT_TYPE
    assert "take POST" in json.loads(resp.data)["Err"]


def test_exception_inside_the_engine_is_a_denial_not_a_500(engine, capsys):
    class Boom(FakeContext):
        def container(self, ref):
            raise RuntimeError("kaboom")

    engine.context_factory = lambda: Boom()
    client = create_app(engine).test_client()
    r = reply(client.post("/AuthZPlugin.AuthZReq", data=envelope("POST", "/containers/x/restart")))
    assert r["Allow"] is False
    assert r["Msg"].startswith("internal error, request denied") and "kaboom" in r["Msg"]
    assert "kaboom" in capsys.readouterr().err  # the traceback is logged
    # and the next request is served normally
    r = reply(client.post("/AuthZPlugin.AuthZReq", data=envelope("GET", "/_ping")))
    assert r["Allow"] is True


def test_exception_in_authzres_still_allows(engine):
    def broken(_data):
        raise RuntimeError("bookkeeping")

    engine.response = broken
    client = create_app(engine).test_client()
    assert reply(client.post("/AuthZPlugin.AuthZRes", data=b"{}"))["Allow"] is True


def test_too_large_plugin_request_is_a_denial(client):
    r = client.post("/AuthZPlugin.AuthZReq", data=b"x" * (MAX_BODY * 2 + 1))
    body = reply(r)
    assert body["Allow"] is False and "too large" in body["Msg"]


def test_inflight_round_trip_through_the_app(tmp_path):
    from authz import policy as policies
    p = tmp_path / "p.toml"
    p.write_text("[limits]\nmax_inflight = 1\n")
    e, _ = make_engine(policies.load(p))
    client = create_app(e).test_client()
    stop = envelope("POST", "/v1.41/containers/a/stop")
    assert reply(client.post("/AuthZPlugin.AuthZReq", data=stop))["Allow"] is True
    assert reply(client.post("/AuthZPlugin.AuthZReq", data=envelope("POST", "/containers/b/stop")))["Allow"] is False
    assert reply(client.post("/AuthZPlugin.AuthZRes", data=envelope("POST", "/v1.41/containers/a/stop", status=204)))["Allow"]
    assert reply(client.post("/AuthZPlugin.AuthZReq", data=envelope("POST", "/containers/b/stop")))["Allow"] is True
