"""The request reader and the rules, fuzzed against a model of dockerd (tests/dockerd_model.py).

Properties:
- a create that dockerd (either Go folding) would accept and apply with a setting that breaks
  a rule is denied: no bypass, whatever the key spelling, repetition, nulls or placement;
- where both accept a body, the reader sees the very settings dockerd applies;
- a body-carrying action whose body cannot be read is denied;
- the router sends a URI to the handler dockerd runs for it, with its name and version;
- nothing, however malformed, makes the engine raise or the app answer other than 200.
"""
from __future__ import annotations

import base64
import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from authz import gojson
from authz import spec as specs
from authz.app import create_app
from authz.request import EnvelopeError, split_uri
from authz.routes import BODY_ACTIONS, route
from tests import dockerd_model as model
from tests.authz.helpers import FakeContext, envelope, make_engine
from tests.creategen import DrawChooser, gen_create

from .conftest import examples

CREATE = "/v1.41/containers/create"


def forwarded(req) -> tuple[bytes, dict]:
    """What dockerd's AuthZ middleware shows the plugin for a JSON body: the body, with its
    Content-Length, or without one when chunked (Go drops Transfer-Encoding; dockerd's
    CVE-2024-41110 fix forwards chunked bodies, seen on 20.10.24 and 26.1.5)."""
    body = req.body.encode("utf-8")
    if req.transfer == "chunked":
        return body, {"Content-Type": "application/json"}
    return body, {"Content-Type": "application/json", "Content-Length": str(len(body))}


def engine_decision(method: str, uri: str, body: bytes, headers: dict):
    engine, _ = make_engine(ctx=FakeContext())
    return engine.request(envelope(method, uri, body, headers=headers))


def model_outcomes(body: bytes) -> dict[str, object]:
    """Go <= 1.20 and Go >= 1.21 (dockerd 20.10 and 26): a model.Create, or the GoError."""
    out = {}
    for name, go_new in (("go1.20", False), ("go1.21", True)):
        try:
            out[name] = model.decode_create(body, go_new)
        except model.GoError as exc:
            out[name] = exc
    return out


BYPASS_SEEDS = [  # bodies that were bypasses of earlier readers, kept as examples
    '{"Image":"busybox","Ho\u017ftConfig":{"Privileged":true}}',
    '{"Image":"busybox","HostConfig":{"PidMode":"host"},"HostConfig":null,"PidMode":"host"}',
    '{"Image":"busybox","Privileged":true}',
    '{"Image":"busybox","HostConfig":{"CapAdd":"SYS_ADMIN"}}',
    '{"Image":"busybox","hostconfig":{"privileged":false,"PRIVILEGED":true}}',
    '{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"/etc","Target":"/x"}],'
    '"Mounts":[{"Type":"bind","Target":"/y"}]}}',
    '{"Image":"busybox","HostConfig":null,"HostConfig":{"NetworkMode":"host"}}',
    # found by this fuzzing: Go ignores null for a bool or string, the reader took it as unset
    '{"Image":"busybox","Cmd":["true"],"Privileged":true,"Privileged":null}',
    '{"Image":"busybox","HostConfig":{"PidMode":"host","pidmode":null}}',
    '{"Image":"busybox","HostConfig":{"SecurityOpt":["seccomp=unconfined"],"Privileged":true,"privileged":null}}',
]


@settings(max_examples=examples(200))
@given(st.data())
def test_create_never_allows_what_the_model_applies_as_dangerous(data):
    req = gen_create(DrawChooser(data))
    _check_create(req.target, req.body, req.transfer)


def _check_create(target, body_text, transfer="length"):
    class R:
        pass
    r = R()
    r.body, r.transfer = body_text, transfer
    body, headers = forwarded(r)
    decision = engine_decision("POST", target, body, headers)
    try:
        action, _name, _ver = model.route("POST", target)
    except model.NoHandler:
        return  # dockerd answers without a handler: the plugin is never asked
    assert action == "container.create"
    for go, outcome in model_outcomes(body_text.encode()).items():
        if isinstance(outcome, model.GoError):
            continue
        bad = model.violations(outcome.host_config)
        assert not (bad and decision.allow), (
            f"BYPASS ({go}): dockerd would apply {bad} from {body_text!r} at {target}")


def test_bypass_seeds_are_denied():
    for body in BYPASS_SEEDS:
        _check_create(CREATE, body)
        assert not engine_decision("POST", CREATE, body.encode(), {"Content-Type": "application/json"}).allow, body


def _stricter_capadd(ours: dict, theirs: dict) -> dict:
    """README's deliberate strictness: `"CapAdd": "X"` set back to null is still read (the
    reader keeps a string on null, as Go does for string fields). Ours may hold more."""
    if set(theirs["CapAdd"]) <= set(ours["CapAdd"]):
        theirs = dict(theirs, CapAdd=ours["CapAdd"])
    return theirs


def _reader_view(hc_spec: specs.Spec) -> dict:
    ns = {k: v[-1] for k, v in hc_spec.namespaces.items()}
    return {
        "Privileged": hc_spec.privileged,
        "PidMode": ns.get("pid", ""), "IpcMode": ns.get("ipc", ""), "NetworkMode": ns.get("net", ""),
        "UTSMode": ns.get("uts", ""), "UsernsMode": ns.get("userns", ""),
        "CapAdd": list(hc_spec.cap_add),
        "SecurityOpt": list(hc_spec.security_opt),
        "Binds": [m.source for m in hc_spec.mounts if m.origin == "Binds"],
        "Mounts": [(m.kind, m.source) for m in hc_spec.mounts if m.origin == "Mounts"],
        "Devices": [d.host for d in hc_spec.devices],
        "Image": hc_spec.image, "Cmd": hc_spec.cmd,
    }


def _model_view(c: model.Create) -> dict:
    hc = c.host_config or {}
    return {
        "Privileged": bool(hc.get("Privileged")),
        **{f: hc.get(f) or "" for f in ("PidMode", "IpcMode", "NetworkMode", "UTSMode", "UsernsMode")},
        "CapAdd": list(hc.get("CapAdd") or []),
        "SecurityOpt": list(hc.get("SecurityOpt") or []),
        "Binds": [specs.parse_bind(b).source for b in hc.get("Binds") or []],
        "Mounts": [((m.get("Type") or "").lower(), m.get("Source") or "") for m in hc.get("Mounts") or []],
        "Devices": [d.get("PathOnHost") or "" for d in hc.get("Devices") or [] if d.get("PathOnHost")],
        "Image": c.config.get("Image") or "", "Cmd": c.config.get("Cmd"),
    }


@settings(max_examples=examples(200))
@given(st.data())
def test_reader_sees_what_dockerd_applies(data):
    req = gen_create(DrawChooser(data))
    try:
        ours = specs.from_create(gojson.decode(req.body.encode()))
    except gojson.BodyError:
        return  # refused: stricter is allowed (the property above bounds it)
    for go, outcome in model_outcomes(req.body.encode()).items():
        if isinstance(outcome, model.GoError):
            continue
        view = _reader_view(ours)
        assert view == _stricter_capadd(view, _model_view(outcome)), (go, req.body)


# ---- bodies that cannot be read ----

BODY_URIS = {
    "container.create": ("POST", "/v1.41/containers/create"),
    "container.update": ("POST", "/v1.41/containers/web/update"),
    "exec.create": ("POST", "/v1.41/containers/web/exec"),
    "volume.create": ("POST", "/v1.41/volumes/create"),
    "service.create": ("POST", "/v1.41/services/create"),
    "service.update": ("POST", "/v1.41/services/s/update"),
    "plugin.pull": ("POST", "/v1.41/plugins/pull"),
    "plugin.upgrade": ("POST", "/v1.41/plugins/p/upgrade"),
    "plugin.set": ("POST", "/v1.41/plugins/p/set"),
}
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=20))
unreadable = st.one_of(
    st.binary(max_size=200).filter(lambda b: not b.lstrip(b" \t\r\n").startswith((b"{", b"["))),
    json_scalars.map(lambda v: json.dumps(v).encode()),
    st.lists(json_scalars, max_size=4).map(lambda v: json.dumps(v).encode()),
    st.text(max_size=60).map(lambda t: ('{"Image": "busybox", "x": ' + json.dumps(t)).encode()),  # truncated
    st.sampled_from([b"", b"   ", b'{"a":NaN}', b'{"a":Infinity}', b"\xff{}", b'{"a":1,}', b"{'a':1}",
                     b'{"HostConfig":{"Privileged":true}', b'{"a":"\x01"}']),
)


def test_body_actions_are_the_ones_fuzzed():
    assert set(BODY_URIS) == set(BODY_ACTIONS)


@settings(max_examples=examples(300))
@given(action=st.sampled_from(sorted(BODY_URIS)), body=unreadable)
def test_unreadable_body_is_never_allowed(action, body):
    method, uri = BODY_URIS[action]
    assert route(method, split_uri(uri)[0])[0] == action
    try:
        value = gojson.decode(body)
    except gojson.BodyError:
        value = None
    if value is None or isinstance(value, gojson.Obj) or (
            isinstance(value, list) and all(isinstance(x, str if action == "plugin.set" else gojson.Obj) for x in value)
            and action.startswith("plugin.")):
        return  # readable after all: null (Go reads nothing into the struct), an object (with
        # trailing bytes dockerd ignores too), a plugin's list of privileges or of KEY=VALUE
    d = engine_decision(method, uri, body, {"Content-Type": "application/json", "Content-Length": str(len(body))})
    assert not d.allow, (action, body)
    assert "[malformed-request]" in d.msg and "Safely:" in d.msg


# ---- URIs ----

NAMES = st.text(st.sampled_from("ab/.%-_~?#;&=+ :x1\u00e9"), min_size=1, max_size=8)


@st.composite
def uris(draw):
    method, template, _action = draw(st.sampled_from([
        ("POST", "/containers/create", "container.create"),
        ("POST", "/containers/{}/start", "container.start"),
        ("POST", "/containers/{}/exec", "exec.create"),
        ("POST", "/containers/{}/update", "container.update"),
        ("POST", "/containers/{}/kill", "container.kill"),
        ("DELETE", "/containers/{}", "container.delete"),
        ("POST", "/exec/{}/start", "exec.start"),
        ("POST", "/volumes/create", "volume.create"),
        ("GET", "/containers/json", "read"),
    ]))
    path = template.replace("{}", draw(NAMES))
    path = draw(st.sampled_from(["", "/v1.41", "/v1.24", "/v1.41.0", "/v.", "/v1.41/v1.40", "/V1.41"])) + path
    out = []
    for c in path:  # percent-escape some characters, in either hex case
        if draw(st.integers(0, 9)) == 0:
            h = f"{ord(c):02x}" if ord(c) < 128 else c.encode().hex()
            h = h if draw(st.booleans()) else h.upper()
            out.append("".join("%" + h[i:i + 2] for i in range(0, len(h), 2)) if ord(c) < 128 else c)
        else:
            out.append(c)
    path = "".join(out)
    prefix = draw(st.sampled_from(["", "", "", "http://docker", "http:", "HTTP://h:2375", "unix://x",
                                   "//", "x", "1http:"]))
    query = draw(st.sampled_from(["", "?name=a", "?name=a&name=b", "?x=1;name=c&name=d", "?name=%zz&name=e",
                                  "?name=a+b", "?", "?name=%41"]))
    return method, prefix + path + query


@settings(max_examples=examples(300))
@given(uris())
@example(("POST", "http://docker/v1.41/containers/%63reate"))
@example(("POST", "/v1.41/containers/a%2fb/start"))
@example(("DELETE", "/v1.41/containers/a/start"))
def test_uri_routes_to_the_handler_dockerd_runs(method_uri):
    method, uri = method_uri
    try:
        action, name, version = model.route(method, uri)
    except model.NoHandler:
        return
    try:
        path, ver, query = split_uri(uri)
    except EnvelopeError as exc:
        raise AssertionError(f"dockerd runs {action} for {uri!r}, the reader refuses it: {exc}") from None
    assert route(method, path) == (action, name), uri
    assert ver == version, uri
    assert (query.get("name") or [""])[0] == model.query_value(uri, "name"), uri


# ---- nothing crashes ----

FIELD_NAMES = ["HostConfig", "Privileged", "Binds", "Mounts", "CapAdd", "Devices", "Labels", "Cmd",
               "Image", "Healthcheck", "Test", "TaskTemplate", "ContainerSpec", "Privileges",
               "Name", "Options", "DriverOpts", "Driver", "Source", "Target", "Type", "SecurityOpt",
               "PidMode", "Tmpfs", "VolumesFrom", "Annotations", "Runtime", "User", "AttachStdin",
               "Tty", "KernelMemory", "BlkioWeightDevice", "Path", "Value", "Seccomp", "Mode",
               "Profile", "VolumeOptions", "DriverConfig", "Networks", "Volumes", "Entrypoint"]
json_values = st.recursive(
    json_scalars | st.sampled_from(["host", "/etc:/x", "/", "dockguard.hook-spec", "SYS_ADMIN", "bind"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(FIELD_NAMES) | st.text(max_size=6), inner, max_size=5),
    max_leaves=25)
ANY_URIS = [("POST", u) for _m, u in BODY_URIS.values()] + [
    ("POST", "/v1.23/containers/c/start"), ("POST", "/v1.41/containers/c/start"),
    ("POST", "/v1.41/containers/c/rename?name=x"), ("POST", "/v1.41/containers/c/stop?t=-1"),
    ("POST", "/v1.41/containers/c/kill?signal=9"), ("DELETE", "/v1.41/containers/c?force=1"),
    ("POST", "/v1.41/build?networkmode=host"), ("POST", "/v1.41/exec/e/start"),
    ("PUT", "/v1.41/containers/c/archive?path=/"), ("POST", "/v1.41/plugins/p/enable"),
    ("POST", "/v1.41/session"), ("POST", "/v1.41/swarm/init"), ("POST", "/v1.41/containers/c/attach?stdin=1"),
]


@settings(max_examples=examples(200))
@given(st.sampled_from(ANY_URIS), json_values, st.sampled_from([None, "0", "12", "", "x"]))
def test_rules_never_crash_on_any_body(method_uri, body, length):
    method, uri = method_uri
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if length is not None:
        headers["Content-Length"] = length
    d = engine_decision(method, uri, raw, headers)  # raises on a crash
    assert isinstance(d.allow, bool)
    assert d.allow or ("Safely:" in d.msg and "[" in d.msg.split("]")[0])


_app_client = None


def client():
    global _app_client
    if _app_client is None:
        engine, _ = make_engine()
        app = create_app(engine)
        app.testing = False
        _app_client = app.test_client()
    return _app_client


envelopes = st.one_of(
    st.binary(max_size=300),
    st.fixed_dictionaries({}, optional={
        "RequestMethod": st.sampled_from(["POST", "GET", "DELETE", "PUT", "post", "", "X"]) | json_scalars,
        "RequestUri": st.sampled_from([CREATE, "/v1.23/containers/c/start", "*", "http:x", ""]) | st.text(max_size=30)
        | json_scalars,
        "RequestBody": st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode()) | json_values,
        "RequestHeaders": st.dictionaries(st.sampled_from(["Content-Length", "content-type", "X"]),
                                          json_scalars, max_size=3) | json_values,
        "User": json_scalars,
        "ResponseStatusCode": json_scalars,
    }).map(lambda d: json.dumps(d).encode()),
)


@settings(max_examples=examples(150))
@given(envelopes)
def test_app_answers_200_to_anything(payload):
    for endpoint in ("/AuthZPlugin.AuthZReq", "/AuthZPlugin.AuthZRes"):
        resp = client().post(endpoint, data=payload)
        assert resp.status_code == 200, (endpoint, payload, resp.data)
        reply = json.loads(resp.data)
        assert isinstance(reply["Allow"], bool) and reply["Err"] == ""
        if endpoint.endswith("Req") and reply["Allow"]:
            # only an envelope the reader could read is allowed, and never a bodiless body action
            env = json.loads(payload)
            assert isinstance(env, dict) and isinstance(env.get("RequestMethod"), str)


@settings(max_examples=examples(150))
@given(st.data())
def test_old_api_start_body_never_allows_what_the_model_applies_as_dangerous(data):
    """An API < 1.24 start body is a HostConfig that dockerd decodes with the create wrapper."""
    req = gen_create(DrawChooser(data))
    body, headers = forwarded(req)
    decision = engine_decision("POST", "/v1.23/containers/web/start", body, headers)
    for go, outcome in model_outcomes(req.body.encode()).items():
        if isinstance(outcome, model.GoError):
            continue
        bad = model.violations(outcome.host_config)
        assert not (bad and decision.allow), f"BYPASS ({go}): old-API start applies {bad} from {req.body!r}"
