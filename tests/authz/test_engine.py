"""authz.engine: envelope -> route -> spec -> rules -> allow/deny/audit, the audit line,
fail-closed reading, lookups that fail, and the in-flight table."""
from __future__ import annotations

import base64
import io
import json
import re

import pytest

from authz import policy as policies
from authz.engine import MAX_BODY, Engine
from authz.routes import BODY_ACTIONS

from .helpers import (FakeContext, allowed, create, decide, default_policy, denied_by, envelope, hc,
                      make_engine)


def policy_from(text: str):
    """A policy loaded from TOML text (through a file, as the plugin loads it)."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
    try:
        return policies.load(f.name)
    finally:
        import os
        os.unlink(f.name)

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_plain_read_is_allowed_and_logged_only_when_asked():
    """[audit] allowed: "changes" (default) leaves allowed reads out; "all" logs them in the
    one schema (every field present, rule a list)."""
    out = decide("GET", "/v1.41/containers/json", user="alice")
    allowed(out)
    assert out.records == []
    pol = policy_from("[audit]\nallowed = \"all\"\n")
    out = decide("GET", "/v1.41/containers/json", user="alice", policy=pol,
                 headers={"User-Agent": "Docker-Client/28.0.0 (linux)"})
    allowed(out)
    rec = out.record
    assert TIME.match(rec["time"]), rec["time"]
    assert len(rec["decision_id"]) == 16 and len(rec["policy_hash"]) == 16
    assert rec == {"time": rec["time"], "action": "read", "method": "GET", "uri": "/v1.41/containers/json",
                   "container": "", "rule": [], "decision": "allow", "user": "alice",
                   "version": __import__("dockguard").__version__, "decision_id": rec["decision_id"],
                   "policy_hash": pol.policy_hash, "exceptions": [], "image": "",
                   "client": "Docker-Client/28.0.0 (linux)", "msg": ""}
    from authz.audit import SCHEMA
    assert set(rec) == set(SCHEMA)


def test_benign_create_is_allowed():
    out = create(name="web")
    allowed(out)
    assert out.record["decision"] == "allow" and out.record["container"] == "web"
    assert out.record["user"] is None  # no authenticated user


def test_denial_message_and_record():
    out = create(hc(Privileged=True), name="web", user="bob")
    msg = denied_by(out, "privileged")
    r = policies.load().by_action["container.create"]
    rule = next(x for x, _ in r if x.id == "privileged")
    assert msg == f"[privileged] --privileged: {rule.reason}. Safely: {rule.hint}."
    rec = out.record
    assert rec["decision"] == "deny" and rec["rule"] == ["privileged"] and rec["action"] == "container.create"
    assert rec["container"] == "web" and rec["user"] == "bob" and rec["msg"] == msg
    assert rec["uri"] == "/v1.41/containers/create?name=web" and rec["method"] == "POST"


def test_several_denials_and_audits_in_one_message():
    body = hc(Privileged=True, CapAdd=["SYS_ADMIN"], Binds=["/srv/file:/f"])
    out = create(body, regular_files={"/srv/file"})
    assert not out.allow
    assert set(out.rules) == {"privileged", "dangerous-capability"}
    assert "[privileged]" in out.msg and "[dangerous-capability]" in out.msg
    assert "[file-bind-mount]" not in out.msg  # audits are logged, not told to the client
    rec = out.record
    assert rec["decision"] == "deny"
    assert set(rec["rule"]) == {"privileged", "dangerous-capability", "file-bind-mount"}


def test_audit_allows_and_logs():
    out = decide("POST", "/v1.41/containers/web/kill?signal=HUP")
    allowed(out)
    rec = out.record
    assert rec["decision"] == "audit" and rec["rule"] == ["kill"] and rec["container"] == "web"
    assert "docker kill --signal HUP web" in rec["msg"] and "Safely:" in rec["msg"]


def test_policy_levels_change_decisions(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[rules]\nprivileged = "audit"\nkill = "deny"\nforce-remove = "off"\n')
    pol = policies.load(p)
    out = create(hc(Privileged=True), policy=pol)
    allowed(out)
    assert out.record["decision"] == "audit" and out.record["rule"] == ["privileged"]
    denied_by(decide("POST", "/containers/x/kill", policy=pol), "kill")
    out = decide("DELETE", "/containers/x?force=1", policy=pol)
    allowed(out)
    assert out.record["decision"] == "allow"


# ---- fail closed ----

@pytest.mark.parametrize("data", [b"not json", b"[]", b"{}", b'{"RequestMethod": 5}',
                                  b'{"RequestMethod":"POST","RequestUri":"/containers/create","RequestBody":"!!"}',
                                  b'{"RequestMethod":"POST","RequestUri":"/containers/%zz/start"}'])
def test_malformed_envelope_is_denied(data):
    engine, stream = make_engine()
    d = engine.request(data)
    assert not d.allow and d.rules == ("malformed-request",)
    assert d.msg.startswith("[malformed-request] ") and "fail closed" in d.msg
    rec = json.loads(stream.getvalue())
    assert rec["decision"] == "deny" and rec["rule"] == ["malformed-request"] and rec["action"] == "unknown"


BODY_URIS = {
    "container.create": "/containers/create", "container.update": "/containers/x/update",
    "exec.create": "/containers/x/exec", "volume.create": "/volumes/create",
    "service.create": "/services/create", "service.update": "/services/s/update",
    "plugin.pull": "/plugins/pull?remote=x", "plugin.upgrade": "/plugins/p/upgrade?remote=x",
    "plugin.set": "/plugins/p/set",
}


def test_body_uris_cover_body_actions():
    assert set(BODY_URIS) == BODY_ACTIONS


@pytest.mark.parametrize("action", sorted(BODY_URIS))
def test_missing_body_is_denied(action):
    out = decide("POST", "/v1.41" + BODY_URIS[action], None)
    denied_by(out, "malformed-request")
    assert f"{action} needs its JSON body" in out.msg


@pytest.mark.parametrize("body,what", [
    ('{"Image": ', "not JSON"),
    ("\x00\x01garbage", "not JSON"),
    ('["Image", "busybox"]', "must be a JSON object"),
    ('{"Image":"busybox","HostConfig":{"Privileged":"yes"}}', "HostConfig.privileged must be a boolean"),
    ('{"Image":"busybox","HostConfig":{"Binds":"/etc:/x"}}', "HostConfig.binds must be a list of strings"),
    ('{"Image":"busybox","HostConfig":{"Kernelmemory":1.5}}', "HostConfig.kernelmemory must be an integer"),
    ('{"Image":"busybox","HostConfig":{"Pr\u0131vileged":true}}', "ambiguous key"),
    ('{"Image":"busybox","Labels":{"a":1}}', "must be a string"),
])
def test_unreadable_create_body_is_denied_with_the_reason(body, what):
    out = create(body)
    msg = denied_by(out, "malformed-request")
    assert what in msg


def test_wrongly_typed_bodies_for_other_actions():
    denied_by(decide("POST", "/containers/x/update", {"KernelMemory": "1"}), "malformed-request")
    denied_by(decide("POST", "/containers/x/exec", {"Privileged": "true"}), "malformed-request")
    denied_by(decide("POST", "/volumes/create", {"DriverOpts": {"o": 1}}), "malformed-request")
    denied_by(decide("POST", "/plugins/pull?remote=x", {"Name": "network"}), "malformed-request")
    denied_by(decide("POST", "/plugins/pull?remote=x", [{"Name": 5}]), "malformed-request")
    denied_by(decide("POST", "/plugins/p/set", ["a=b", 5]), "malformed-request")
    denied_by(decide("POST", "/services/create", {"TaskTemplate": []}), "malformed-request")
    denied_by(decide("POST", "/containers/x/start", '{"Privileged": 1}'), "malformed-request")


def test_oversize_is_denied():
    data = json.dumps({"RequestMethod": "POST", "RequestUri": "/containers/create",
                       "RequestBody": base64.b64encode(b" " * (MAX_BODY + 10)).decode()}).encode()
    engine, _ = make_engine()
    d = engine.request(data)
    assert not d.allow and "larger than" in d.msg and "[malformed-request]" in d.msg


def test_body_just_under_the_limit_is_read():
    pad = "x" * (MAX_BODY - 200)
    out = create({"Image": "busybox", "Cmd": ["true"], "Labels": {"pad": pad}, "HostConfig": {"Privileged": True}})
    denied_by(out, "privileged")


# ---- lookups that fail deny, never allow ----

@pytest.mark.parametrize("method,uri,body,fail,rule", [
    ("POST", "/containers/web/restart", None, "container", "restart-autoremove"),
    ("POST", "/containers/web/rename?name=other", None, "container", "rename-restarting"),
    ("POST", "/containers/create?name=abc123", {"Image": "x", "Cmd": ["true"]}, "container_ids", "name-shadows-id"),
    ("POST", "/containers/create", {"Image": "busybox"}, "image_config", "shell-without-tty"),
    ("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]}, "image_config", "hook-spec"),
    ("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]}, "image_config", "health-labels"),
    ("POST", "/containers/create", hc(Binds=["/srv/data:/d"]), "docker_root", "sensitive-mount"),
    ("POST", "/containers/create", {"Image": "x", "Cmd": ["true"], "Labels": {"dockguard.hook-spec": "/x.json"}},
     "docker_root", "hook-spec"),
    ("POST", "/plugins/p/disable", None, "plugin", "plugin-self-protect"),
])
def test_failed_lookup_denies_with_could_not_look_up(method, uri, body, fail, rule):
    out = decide(method, uri, body, fail={fail})
    msg = denied_by(out, rule)
    assert "could not look up" in msg and "cannot check this rule without it" in msg


def test_failed_lookup_for_an_audit_rule_is_audited_not_denied(tmp_path):
    # cp-nonroot is audit-level: even a successful lookup could never deny (the copy's
    # mount rules, which judge the existing container too, are turned off here)
    from authz.existing import ARCHIVE_RULES
    from authz.rules import all_rules
    p = tmp_path / "p.toml"
    p.write_text("[rules]\n" + "".join(f'{r} = "off"\n' for r in ARCHIVE_RULES if r in all_rules()))
    out = decide("PUT", "/containers/web/archive?path=/tmp", fail={"container"}, policy=policies.load(p))
    allowed(out)
    assert out.record["decision"] == "audit" and "could not look up" in out.record["msg"]


def test_requests_that_need_no_lookup_do_not_look_up():
    # A create always asks for its image once: dockerd merges the image's labels into the
    # container's, and hook-spec and health-labels judge the merged labels.
    out = create({"Image": "busybox", "Entrypoint": ["echo"], "Cmd": ["ok"]}, fail={"container", "container_ids",
                 "docker_root", "plugin"})
    allowed(out)
    assert set(out.ctx.calls) == {("image_config", "busybox")}  # memoised by the real context


def test_rule_crash_propagates_to_the_app_not_an_allow():
    class Boom(FakeContext):
        def container(self, ref):
            raise KeyError("boom")

    with pytest.raises(KeyError):
        decide("POST", "/containers/x/restart", ctx=Boom())


# ---- in-flight limit, closed by AuthZRes ----

def small_engine(tmp_path, n=2, ttl=60):
    p = tmp_path / "p.toml"
    p.write_text(f"[limits]\nmax_inflight = {n}\ninflight_ttl_seconds = {ttl}\n")
    return make_engine(policies.load(p))


def test_inflight_limit_and_authzres_closes(tmp_path):
    engine, stream = small_engine(tmp_path)
    stop = lambda n: envelope("POST", f"/v1.41/containers/{n}/stop")  # noqa: E731
    assert engine.request(stop("a")).allow
    assert engine.request(stop("b")).allow
    d = engine.request(stop("c"))
    assert not d.allow and d.rules == ("inflight-limit",)
    assert "[inflight-limit] 2 lifecycle operations already in flight" in d.msg and "Safely:" in d.msg
    # reads and non-lifecycle writes are not limited
    assert engine.request(envelope("GET", "/containers/json")).allow
    assert engine.request(envelope("POST", "/networks/create", {"Name": "n"})).allow
    # the response to a's stop closes its entry, and always allows
    r = engine.response(envelope("POST", "/v1.41/containers/a/stop", status=204))
    assert r.allow and r.msg == ""
    assert engine.inflight.count() == 1
    assert engine.request(stop("c")).allow
    assert not engine.request(stop("d")).allow


def test_a_denied_request_takes_no_slot(tmp_path):
    engine, _ = small_engine(tmp_path, n=1)
    assert not engine.request(envelope("POST", "/containers/create", hc(Privileged=True))).allow
    assert engine.inflight.count() == 0
    assert engine.request(envelope("POST", "/containers/create", hc())).allow
    assert engine.inflight.count() == 1


def test_inflight_limit_off_and_audit(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[rules]\ninflight-limit = "audit"\n[limits]\nmax_inflight = 1\n')
    engine, stream = make_engine(policies.load(p))
    assert engine.request(envelope("POST", "/containers/a/stop")).allow
    assert engine.request(envelope("POST", "/containers/b/stop")).allow
    last = json.loads(stream.getvalue().splitlines()[-1])
    assert last["decision"] == "audit" and last["rule"] == ["inflight-limit"]
    p.write_text('[rules]\ninflight-limit = "off"\n[limits]\nmax_inflight = 1\n')
    engine, _ = make_engine(policies.load(p))
    for n in "abc":
        assert engine.request(envelope("POST", f"/containers/{n}/stop")).allow


def test_responses_never_come_ttl_frees(tmp_path):
    engine, _ = small_engine(tmp_path, n=1, ttl=30)
    clock = [0.0]
    engine.inflight.clock = lambda: clock[0]
    assert engine.request(envelope("POST", "/containers/a/start")).allow
    assert not engine.request(envelope("POST", "/containers/b/start")).allow
    clock[0] += 30
    assert engine.request(envelope("POST", "/containers/b/start")).allow


@pytest.mark.parametrize("data", [b"garbage", b"[]", envelope("POST", "/containers/%zz/stop"),
                                  envelope("POST", "/containers/never-started/stop", status=500),
                                  envelope("GET", "/info", status=200)])
def test_authzres_always_allows(data):
    engine, stream = make_engine()
    d = engine.response(data)
    assert d.allow and d.msg == ""
    assert engine.inflight.count() == 0


def test_audit_record_for_unknown_route():
    out = decide("POST", "/v1.41/containers/x/checkpoints", {})
    allowed(out)
    rec = out.record
    assert rec["action"] == "unknown" and rec["decision"] == "audit" and rec["rule"] == ["unknown-route"]
    assert rec["uri"] == "/v1.41/containers/x/checkpoints"
    assert "POST /containers/x/checkpoints" in rec["msg"]


def test_long_uri_is_truncated_in_the_log():
    out = decide("POST", "/containers/x/pause?x=" + "a" * 2000)
    assert len(out.record["uri"]) == 512


def test_closed_audit_stream_does_not_break_decisions():
    s = io.StringIO()
    engine, _ = make_engine(stream=s)
    s.close()
    assert not engine.request(envelope("POST", "/containers/create", hc(Privileged=True))).allow
    assert engine.request(envelope("GET", "/_ping")).allow


def test_engine_with_the_real_context_factory_looks_up_lazily():
    # the edge's factory makes the real RequestContext (and its client) lazily; a read needs none
    import io
    from authz.audit import AuditLog
    from authz.context import request_contexts
    pol = default_policy()
    e = Engine(pol, request_contexts(pol), AuditLog(io.StringIO()))
    assert e.request(envelope("GET", "/_ping")).allow


def test_decision_json():
    out = create(hc(Privileged=True))
    assert out.decision.as_json() == {"Allow": False, "Msg": out.msg, "Err": ""}


# ---- the old API (< 1.24) applies a start body's HostConfig ----

def test_old_api_start_body_is_checked():
    denied_by(decide("POST", "/v1.23/containers/x/start", {"Privileged": True}), "privileged")
    denied_by(decide("POST", "/v1.23/containers/x/start", {"Binds": ["/etc:/x"]}), "sensitive-mount")
    allowed(decide("POST", "/v1.23/containers/x/start", {"Memory": 0}))


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/json"},                         # chunked: no Content-Length
    {"Content-Type": "application/json", "Content-Length": "2000000"},  # too large to be forwarded
    {"Content-Type": "application/json; charset=utf-8", "Content-Length": "8"},
    {"Content-Type": "text/plain", "Content-Length": "2000000"},   # a repeated header: we see the last
])
def test_old_api_start_body_dockerd_did_not_forward_is_denied(headers):
    out = decide("POST", "/v1.23/containers/x/start", None, headers=headers)
    msg = denied_by(out, "malformed-request")
    assert "container.start" in msg


@pytest.mark.parametrize("uri,headers", [
    ("/v1.23/containers/x/start", {"Content-Length": "0"}),
    ("/v1.23/containers/x/start", {"Content-Type": "application/json", "Content-Length": "7"}),
    ("/v1.24/containers/x/start", {"Content-Type": "application/json"}),
    ("/v1.41/containers/x/start", {"Content-Type": "application/json", "Content-Length": "2000000"}),
    ("/containers/x/start", {"Content-Type": "application/json"}),  # default version: no body taken
])
def test_start_without_a_body_dockerd_would_apply_is_allowed(uri, headers):
    allowed(decide("POST", uri, None, headers=headers))


def test_old_api_start_with_odd_content_length_is_denied_not_crashed():
    for v in ("\u00b2", "-1", "x", ""):
        out = decide("POST", "/v1.23/containers/x/start", None, headers={"Content-Length": v})
        denied_by(out, "malformed-request")
    out = decide("POST", "/v1.23/containers/x/start", None, headers={"Content-Length": 8})
    denied_by(out, "malformed-request")


# ---- a form body overrides the query in Go (r.Form: body values first) and is not forwarded ----

FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("method,uri", [
    ("POST", "/containers/web/rename?name=web2"),
    ("POST", "/build?networkmode=default&remote=https://example.com/ctx.tar"),
    ("POST", "/containers/web/kill?signal=TERM"),
    ("POST", "/containers/web/stop?t=5"),
])
@pytest.mark.parametrize("headers", [
    {"Content-Type": FORM, "Content-Length": "40"},
    {"Content-Type": FORM},                                   # chunked
    {"content-type": "Application/X-WWW-Form-Urlencoded; charset=utf-8", "Content-Length": "9"},
    {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": "100"},
])
def test_form_body_that_could_override_the_query_is_denied(method, uri, headers):
    out = decide(method, uri, None, headers=headers)
    assert "form-encoded body" in denied_by(out, "malformed-request")


def test_empty_form_or_other_bodies_are_fine():
    allowed(decide("POST", "/containers/web/rename?name=web2", None, headers={"Content-Type": FORM,
                                                                            "Content-Length": "0"}))
    allowed(decide("POST", "/containers/web/rename?name=web2", None, headers={"Content-Type": "text/plain",
                                                                            "Content-Length": "0"}))
    allowed(decide("POST", "/build?networkmode=default", None, headers={"Content-Type": "application/x-tar"}))
    # reads and deletes never parse a body as a form
    allowed(decide("DELETE", "/containers/web", None, headers={"Content-Type": FORM}))
    # routes without rules are not affected
    allowed(decide("POST", "/networks/n/connect", None, headers={"Content-Type": FORM}))


def test_audit_time_is_one_instant(monkeypatch):
    import time as real_time
    from authz import audit

    class FakeTime:
        calls = iter([59.9996, 60.0004, 60.0005])
        gmtime = staticmethod(real_time.gmtime)
        strftime = staticmethod(real_time.strftime)

        @classmethod
        def time(cls):
            return next(cls.calls)

    monkeypatch.setattr(audit, "time", FakeTime)
    s = io.StringIO()
    audit.AuditLog(s).write(action="a", method="GET", uri="/", container="", decision="allow", rules=[], user="")
    assert json.loads(s.getvalue())["time"] == "1970-01-01T00:00:59.999Z"


def test_a_lone_surrogate_from_the_body_does_not_lose_the_audit_record():
    # Python's json keeps "\ud800" as a lone surrogate (Go makes it U+FFFD); stdout cannot encode it
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    engine, _ = make_engine(stream=stream)
    d = engine.request(envelope("POST", "/containers/create",
                                '{"Image":"x","Cmd":["true"],"HostConfig":{"Binds":["/etc/\\ud800:/x"]}}'))
    assert not d.allow and "\ud800" in d.msg
    rec = json.loads(raw.getvalue().decode())
    assert rec["decision"] == "deny" and rec["rule"] == ["sensitive-mount"]


@pytest.mark.parametrize("uri", ["/v1.41/containers/web/rename?name=web2", "/v1.41/containers/web/stop?t=5",
                                 "/v1.41/containers/web/restart", "/v1.41/containers/web/kill"])
def test_unseen_body_on_query_only_routes_is_denied(uri):
    """Two Content-Type headers: dockerd shows us the last (JSON) and parses by the first (a
    form): a body we cannot see may carry the query values dockerd will use."""
    headers = {"Content-Type": "application/json", "Content-Length": "40"}
    out = decide("POST", uri, headers=headers, containers={"web": {"State": {}, "HostConfig": {}}})
    assert not out.allow and "malformed-request" in out.rules
    headers = {"Content-Type": "text/plain", "Content-Length": "0"}
    out = decide("POST", uri, headers=headers, containers={"web": {"State": {}, "HostConfig": {}}})
    assert "malformed-request" not in out.rules


# ---- hole 4: rename/stop/restart/kill pass only when they provably carry no body ----

@pytest.mark.parametrize("uri", ["/v1.41/containers/b/rename?name=safe", "/containers/b/stop?t=1",
                                 "/containers/b/restart", "/v1.45/containers/b/kill?signal=TERM"])
@pytest.mark.parametrize("headers", [
    {"Content-Type": FORM},                        # chunked: Go drops Content-Length and T-E
    {"Content-Type": "application/json"},          # chunked behind a second Content-Type
    {},                                            # nothing shown at all
    {"Content-Length": "12"},                      # a body we were not shown
    {"Content-Length": " 5 "},
    {"Content-Length": "+0"},                      # not a length Go reads as 0
    {"Content-Length": "0x0"},
    {"Content-Length": "\u0660"},                  # Arabic-Indic zero: not an ASCII digit
])
def test_query_only_actions_without_a_provably_empty_body_are_denied(uri, headers):
    msg = denied_by(decide("POST", uri, None, headers=headers), "malformed-request")
    assert "form-encoded body" in msg


@pytest.mark.parametrize("headers", [
    {"Content-Length": "0"},                               # docker CLI (Go) and docker SDK (requests)
    {"Content-Type": "text/plain", "Content-Length": "0"},  # docker CLI >= 23
    {"content-length": "00"}, {"Content-Length": " 0\t"},   # as Go parses it
])
def test_query_only_actions_with_content_length_zero_are_allowed(headers):
    allowed(decide("POST", "/containers/b/rename?name=safe", None, headers=headers))
    allowed(decide("POST", "/containers/b/stop", None, headers=headers))


def test_query_only_action_with_a_forwarded_json_body_is_allowed():
    # dockerd forwards a body only when the first Content-Type is JSON: Go never reads that as a form
    allowed(decide("POST", "/containers/b/restart?t=1", {"x": 1},
                   headers={"Content-Type": "application/json", "Content-Length": "8"}))


# ---- hole 5: an old-API start body in either shape, any spelling of the version ----

@pytest.mark.parametrize("version", ["v1.22", "v1.23", "v01.23", "v1.23.0", "v1.12", "v1.023"])
@pytest.mark.parametrize("text", [
    '{"HostConfig": {"PidMode": "host"}}',
    '{"hostconfig": {"PidMode": "host"}}',
    '{"HOSTCONFIG": {"pidmode": "host"}}',
    '{"Ho\u017ftConfig": {"PidMode": "host"}}',
    '{"HostConfig": null, "PidMode": "host"}',
    '{"HostConfig": {"Privileged": false}, "HostConfig": null, "PidMode": "host"}',
    '{"PidMode": "host"}',
])
def test_old_api_start_body_in_either_shape_is_checked(version, text):
    denied_by(decide("POST", f"/{version}/containers/x/start", text), "host-namespace")


def test_old_api_start_body_benign_twins():
    allowed(decide("POST", "/v1.22/containers/x/start", {"HostConfig": {"Memory": 0, "RestartPolicy": {}}}))
    # top-level fields next to a HostConfig object are ignored by dockerd (checked on 20.10)
    allowed(decide("POST", "/v1.22/containers/x/start", {"PidMode": "host", "HostConfig": {}}))
    # an erased HostConfig is not applied
    allowed(decide("POST", "/v1.22/containers/x/start", '{"HostConfig": {"PidMode": "host"}, "HostConfig": null}'))


# ---- stricter than dockerd, or not ----

def test_create_through_an_absolute_form_without_authority_is_judged():
    # Go routes `POST http:/v1.41/containers/create` to create (checked on 20.10)
    denied_by(decide("POST", "http:/v1.41/containers/create", hc(Privileged=True)), "privileged")
    allowed(decide("POST", "http:/v1.41/containers/create", hc()))


def test_top_level_fields_next_to_a_host_config_object_are_not_judged():
    allowed(decide("POST", "/v1.41/containers/create", {"Image": "busybox", "Cmd": ["true"],
                                                        "Privileged": True, "HostConfig": {}}))


@pytest.mark.parametrize("body", [
    hc(IpcMode="Host"),                            # dockerd 26 refuses it; 20.10 fails at start
    hc(SecurityOpt=["seccomp=Unconfined"]),        # not "unconfined" to dockerd: fails at start
])
def test_deliberate_strictness_that_costs_nobody(body):
    assert not decide("POST", "/v1.41/containers/create", body).allow
