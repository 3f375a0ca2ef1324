"""authz.request: dockerd's envelope, and the RequestUri read as Go's server and mux read it."""
from __future__ import annotations

import base64
import json

import pytest

from authz.request import EnvelopeError, clean_path, parse_envelope, parse_query, split_uri, unescape

from .helpers import envelope


@pytest.mark.parametrize("uri,path,version", [
    ("/containers/create", "/containers/create", None),
    ("/v1.41/containers/create", "/containers/create", "1.41"),
    ("/v1/containers/create", "/containers/create", "1"),
    ("/v1.41", "/", "1.41"),
    ("http://docker/v1.41/containers/create", "/containers/create", "1.41"),
    ("https://evil.example:2375/containers/create", "/containers/create", None),
    ("unix+x://whatever/containers/create", "/containers/create", None),
    ("http://docker", "/", None),
    ("/v1.41/containers/%63reate", "/containers/create", "1.41"),
    ("/v1.41/%63ontainers%2Fcreate", "/containers/create", "1.41"),
    ("/containers/a%2Fb/start", "/containers/a/b/start", None),
    ("/v1.41//containers/./create", "/containers/create", "1.41"),
    ("//containers//create", "/containers/create", None),
    ("/v1.41/containers/x/../create", "/containers/create", "1.41"),
    ("/v1.41/../containers/create", "/containers/create", None),
    ("/containers/create/", "/containers/create/", None),
    # url.ParseRequestURI keeps '#' in the path (dockerd answers 404 to create#frag)
    ("/containers/create#frag", "/containers/create#frag", None),
    ("/v1.41/containers/x#/start", "/containers/x#/start", "1.41"),
    # any scheme, with or without //authority: dockerd 20.10 and 26 create with each of these
    ("http:/v1.41/containers/create", "/containers/create", "1.41"),
    ("HTTP://x/v1.41/containers/create", "/containers/create", "1.41"),
    ("x+y.z:/v1.41/containers/create", "/containers/create", "1.41"),
    ("http://a/b@c/v1.41/containers/create", "/b@c/v1.41/containers/create", None),
    ("http://docker/v1.41/containers/create?x=/y#z", "/containers/create", "1.41"),
    ("/containers/a+b", "/containers/a+b", None),  # '+' is a space only in the query
])
def test_split_uri_paths(uri, path, version):
    got_path, got_version, _q = split_uri(uri)
    assert (got_path, got_version) == (path, version)


def test_absolute_form_keeps_the_query():
    _p, _v, q = split_uri("http://docker/v1.41/containers/x?force=1")
    assert q == {"force": ["1"]}
    p, _v, q = split_uri("http://docker?force=1")
    assert p == "/" and q == {"force": ["1"]}


@pytest.mark.parametrize("uri", ["/containers/%zzcreate", "/containers/create%", "/containers/%4",
                                 "/containers/%g1/start"])
def test_invalid_escapes_in_the_path_are_refused(uri):
    with pytest.raises(EnvelopeError, match="invalid URL escape"):
        split_uri(uri)


@pytest.mark.parametrize("uri", ["", "containers/create", "mailto:x", "1http://x/",
                                 "http:v1.41/containers/create"])
def test_unusable_uris_are_refused(uri):
    with pytest.raises(EnvelopeError):
        split_uri(uri)


def test_asterisk_form():
    assert split_uri("*") == ("*", None, {})


def test_clean_path():
    assert clean_path("") == "/"
    assert clean_path("a/b") == "/a/b"
    assert clean_path("/a/b/") == "/a/b/"
    assert clean_path("/") == "/"
    assert clean_path("///") == "/"
    assert clean_path("/a/./b/../c") == "/a/c"


def test_query_first_value_wins_and_plus_is_space():
    q = parse_query("force=0&force=1&name=a+b&x=%41")
    assert q["force"] == ["0", "1"]
    assert q["name"] == ["a b"]
    assert q["x"] == ["A"]


def test_query_pairs_with_semicolons_or_bad_escapes_are_dropped():
    q = parse_query("force=1;x=2&a=1&b=%zz&%zz=3&&=4&c")
    assert "force" not in q and "force=1;x" not in q
    assert q["a"] == ["1"]
    assert "b" not in q and "%zz" not in q
    assert q[""] == ["4"]
    assert q["c"] == [""]
    assert parse_query("") == {}


def test_unescape():
    assert unescape("a%2Fb", query=False) == "a/b"
    assert unescape("a+b", query=False) == "a+b"
    assert unescape("a+b", query=True) == "a b"
    assert unescape("%C3%A9", query=False) == "\u00e9"
    with pytest.raises(EnvelopeError):
        unescape("%", query=True)


def req(uri, **kw):
    return parse_envelope(envelope("POST", uri, **kw), max_body=1 << 20)


@pytest.mark.parametrize("value,expected", [
    ("1", True), ("True", True), ("t", True), ("on", True), ("yes", True), ("%20yes", True),
    ("anything", True), ("-1", True),
    ("", False), ("0", False), ("no", False), ("NO", False), ("false", False), ("False", False),
    ("none", False), ("NONE", False), ("%200%20", False), ("%09false%0A", False),
    # Go's strings.TrimSpace does not trim the ASCII separators \x1c-\x1f (Python's strip does)
    ("0%1C", True), ("%1Ffalse", True), ("no%1D", True), ("none%1E", True),
    # but it trims Unicode spaces
    ("%C2%A00", False), ("%E3%80%80false", False), ("%C2%850", False),
])
def test_q_bool_is_httputils_boolvalue(value, expected):
    r = req(f"/containers/x?force={value}")
    assert r.q_bool("force") is expected


def test_q_bool_missing_and_first_value():
    assert req("/containers/x").q_bool("force") is False
    assert req("/containers/x?force=1&force=0").q_bool("force") is True
    assert req("/containers/x?force=0&force=1").q_bool("force") is False
    assert req("/containers/x?Force=1").q_bool("force") is False  # form keys are exact


def test_q_first_value():
    r = req("/containers/x?t=-1&t=5&name=a+b")
    assert r.q("t") == "-1"
    assert r.q("name") == "a b"
    assert r.q("missing") == ""


def test_parse_envelope_fields():
    body = {"Image": "busybox"}
    data = envelope("post", "/v1.41/containers/create?name=x", body, user="alice",
                    headers={"Content-Type": "application/json"})
    r = parse_envelope(data, max_body=1 << 20)
    assert r.method == "POST"
    assert r.uri == "/v1.41/containers/create?name=x"
    assert r.path == "/containers/create" and r.version == "1.41"
    assert r.query == {"name": ["x"]}
    assert json.loads(r.body_raw) == body
    assert r.user == "alice"
    assert r.headers == {"Content-Type": "application/json"}
    assert r.body().get("image") == "busybox"


def test_parse_envelope_accepts_requesturi_spelling_too():
    data = json.dumps({"RequestMethod": "GET", "RequestURI": "/_ping"}).encode()
    assert parse_envelope(data, max_body=10).path == "/_ping"


def test_response_status():
    data = envelope("POST", "/containers/x/stop", status=204)
    assert parse_envelope(data, max_body=10).status == 204


@pytest.mark.parametrize("data,match", [
    (b"not json", "not JSON"),
    (b"\xff", "not JSON"),
    (b"[]", "not a JSON object"),
    (b"{}", "lacks RequestMethod or RequestUri"),
    (b'{"RequestMethod": 5, "RequestUri": "/"}', "lacks RequestMethod"),
    (b'{"RequestMethod": "", "RequestUri": "/"}', "lacks RequestMethod"),
    (b'{"RequestMethod": "GET"}', "lacks RequestMethod or RequestUri"),
    (b'{"RequestMethod": "GET", "RequestUri": 5}', "lacks RequestMethod or RequestUri"),
    (b'{"RequestMethod": "POST", "RequestUri": "/", "RequestBody": 5}', "base64 text"),
    (b'{"RequestMethod": "POST", "RequestUri": "/", "RequestBody": "!!"}', "not valid base64"),
    (b'{"RequestMethod": "POST", "RequestUri": "/", "RequestBody": "abc"}', "not valid base64"),
    (b'{"RequestMethod": "POST", "RequestUri": "/", "User": 5}', "wrongly typed"),
    (b'{"RequestMethod": "POST", "RequestUri": "/", "RequestHeaders": ["x"]}', "wrongly typed"),
    (b'{"RequestMethod": "POST", "RequestUri": "/", "ResponseStatusCode": "200"}', "wrongly typed"),
    (b'{"RequestMethod": "POST", "RequestUri": "/containers/%zz"}', "invalid URL escape"),
])
def test_bad_envelopes(data, match):
    with pytest.raises(EnvelopeError, match=match):
        parse_envelope(data, max_body=1 << 20)


def test_oversized_body_is_refused_before_decoding():
    body = base64.b64encode(b"x" * 2000).decode()
    data = json.dumps({"RequestMethod": "POST", "RequestUri": "/", "RequestBody": body}).encode()
    with pytest.raises(EnvelopeError, match="larger than 1000 bytes"):
        parse_envelope(data, max_body=1000)
    assert parse_envelope(data, max_body=2000).body_raw == b"x" * 2000


def test_body_errors_are_remembered():
    r = parse_envelope(envelope("POST", "/containers/create", b'{"Image": '), max_body=100)
    from authz.gojson import BodyError
    for _ in range(2):
        with pytest.raises(BodyError, match="not JSON"):
            r.body()


@pytest.mark.parametrize("version,less", [
    ("1.23", True), ("01.23", True), ("1.23.0", True), ("1.023", True), ("1.22.99", True),
    ("1.24", False), ("1.24.0", False), ("2", False), ("1..30", True), (".", True),
])
def test_version_less_as_dockerd_compares(version, less):
    from authz.request import version_less
    assert version_less(version, (1, 24)) is less
