"""force-remove, kill, stop-negative-timeout, restart-autoremove, rename-restarting, cp-nonroot."""
from __future__ import annotations

import pytest

from .helpers import FakeContext, allowed, decide, denied_by, problems


# ---- docker rm -f ----

@pytest.mark.parametrize("q", ["force=1", "force=True", "force=true", "force=%20yes", "force=on", "force=t",
                               "force=1&force=0", "v=1&force=t", "force=0%1C", "force=-1"])
def test_force_remove(q):
    msg = denied_by(decide("DELETE", f"/v1.41/containers/web?{q}"), "force-remove")
    assert "docker rm -f web" in msg


@pytest.mark.parametrize("q", ["", "force=0", "force=false", "force=FALSE", "force=no", "force=none", "force=",
                               "force=0&force=1", "v=1", "Force=1", "force=1;x=1"])
def test_not_forced(q):
    allowed(decide("DELETE", f"/v1.41/containers/web?{q}"))


def test_force_remove_through_uri_forms():
    denied_by(decide("DELETE", "http://docker/v1.41/containers/web?force=1"), "force-remove")
    msg = denied_by(decide("DELETE", "/containers/a%2Fb?force=1"), "force-remove")
    assert "docker rm -f a/b" in msg


# ---- kill (audit) ----

def test_kill_is_audited_with_its_signal():
    out = decide("POST", "/containers/web/kill?signal=SIGHUP")
    allowed(out)
    assert out.record["decision"] == "audit" and out.record["rule"] == ["kill"]
    assert "docker kill --signal SIGHUP web" in out.record["msg"]
    assert problems("kill", "POST", "/containers/web/kill") == ["docker kill --signal KILL web"]


# ---- stop -t <0 (audit) ----

@pytest.mark.parametrize("action", ["stop", "restart"])
def test_stop_negative_timeout(action):
    assert problems("stop-negative-timeout", "POST", f"/containers/web/{action}?t=-1") == ["-t -1"]
    assert problems("stop-negative-timeout", "POST", f"/containers/web/{action}?t=-1&t=5") == ["-t -1"]
    assert not problems("stop-negative-timeout", "POST", f"/containers/web/{action}?t=5&t=-1")
    assert not problems("stop-negative-timeout", "POST", f"/containers/web/{action}?t=0")
    assert not problems("stop-negative-timeout", "POST", f"/containers/web/{action}")
    assert not problems("stop-negative-timeout", "POST", f"/containers/web/{action}?t=abc")


def test_stop_negative_timeout_is_audited():
    out = decide("POST", "/containers/web/stop?t=-1")
    allowed(out)
    assert out.record["decision"] == "audit" and out.record["rule"] == ["stop-negative-timeout"]


# ---- restart of an --rm container ----

def test_restart_autoremove():
    containers = {"rmme": {"HostConfig": {"AutoRemove": True}}, "keep": {"HostConfig": {"AutoRemove": False}}}
    msg = denied_by(decide("POST", "/v1.41/containers/rmme/restart?t=0", containers=containers), "restart-autoremove")
    assert "docker restart rmme (created with --rm)" in msg
    allowed(decide("POST", "/v1.41/containers/keep/restart", containers=containers))
    allowed(decide("POST", "/v1.41/containers/nosuch/restart", containers=containers))  # dockerd: 404
    allowed(decide("POST", "/v1.41/containers/odd/restart", containers={"odd": {}}))


def test_restart_looks_up_the_name_as_given():
    out = decide("POST", "/containers/abc123/restart", containers={"abc123": {"HostConfig": {"AutoRemove": True}}})
    denied_by(out, "restart-autoremove")
    assert ("container", "abc123") in out.ctx.calls


# ---- rename while restarting ----

def test_rename_restarting():
    containers = {"flap": {"State": {"Restarting": True}}, "steady": {"State": {"Restarting": False, "Running": True}}}
    msg = denied_by(decide("POST", "/containers/flap/rename?name=new", containers=containers), "rename-restarting")
    assert "docker rename flap while it is restarting" in msg
    allowed(decide("POST", "/containers/steady/rename?name=new", containers=containers))
    allowed(decide("POST", "/containers/nosuch/rename?name=new", containers=containers))


# ---- docker cp into a non-root container (audit) ----

@pytest.mark.parametrize("user", ["nobody", "nobody:nogroup", "65534", "1000:1000", "app"])
def test_cp_nonroot_is_audited(user):
    out = decide("PUT", "/v1.41/containers/web/archive?path=/tmp", containers={"web": {"Config": {"User": user}}})
    allowed(out)
    rec = out.record
    assert rec["decision"] == "audit" and rec["rule"] == ["cp-nonroot"] and rec["container"] == "web"
    assert f"docker cp into web (runs as {user!r}) without -a" in rec["msg"]


@pytest.mark.parametrize("user", ["", "root", "0", "0:0", "root:root", None])
def test_cp_root_is_fine(user):
    out = decide("PUT", "/containers/web/archive?path=/tmp", containers={"web": {"Config": {"User": user}}})
    allowed(out)
    assert out.record["decision"] == "allow"


@pytest.mark.parametrize("q", ["copyUIDGID=1", "copyUIDGID=true", "copyUIDGID=1&copyUIDGID=0"])
def test_cp_with_copyuidgid_needs_no_lookup(q):
    out = decide("PUT", f"/containers/web/archive?path=/tmp&{q}", containers={"web": {"Config": {"User": "nobody"}}})
    assert out.record["decision"] == "allow"
    # the one lookup is the copy's mount check of the existing container (authz/existing.py)
    assert out.ctx.calls == [("container", "web")]
    ctx = FakeContext(containers={"web": {"Config": {"User": "nobody"}}})
    assert not problems("cp-nonroot", "PUT", f"/containers/web/archive?path=/tmp&{q}", ctx=ctx)
    assert ctx.calls == []  # cp-nonroot itself asks nothing with -a


def test_cp_copyuidgid_false_still_checked():
    out = decide("PUT", "/containers/web/archive?path=/tmp&copyUIDGID=0", containers={"web": {"Config": {"User": "nobody"}}})
    assert out.record["decision"] == "audit"


def test_cp_policy_deny(tmp_path):
    from authz import policy as policies
    p = tmp_path / "p.toml"
    p.write_text('[rules]\ncp-nonroot = "deny"\n')
    pol = policies.load(p)
    denied_by(decide("PUT", "/containers/web/archive?path=/", policy=pol, containers={"web": {"Config": {"User": "nobody"}}}),
              "cp-nonroot")
    allowed(decide("PUT", "/containers/web/archive?path=/", policy=pol, containers={"web": {"Config": {"User": "root"}}}))
    # at deny level a failed lookup denies
    out = decide("PUT", "/containers/web/archive?path=/", policy=pol, fail={"container"})
    assert "could not look up" in denied_by(out, "cp-nonroot")


def test_inflight_limit_is_an_engine_stage_not_a_rule():
    assert problems("privileged", "POST", "/containers/create", {"Image": "x"}) is None
    from authz.inflight import LIMIT
    from authz.rules import all_checks, all_rules
    assert "inflight-limit" not in all_rules() and all_checks()["inflight-limit"] is LIMIT
    assert LIMIT.actions == frozenset() and LIMIT.check is None and LIMIT.reason and LIMIT.hint
