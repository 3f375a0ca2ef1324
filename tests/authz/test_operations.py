"""Issue 13 (operating it day to day), the plugin side: exceptions, rollout mode, the audit schema."""
from __future__ import annotations

import os

import pytest

from authz import policy as policies
from authz.audit import SCHEMA

from .helpers import FakeContext, allowed, create, denied_by, hc


def policy_from(tmp_path, text: str):
    p = tmp_path / "policy.toml"
    p.write_text(text)
    return policies.load(p)


LOCALTIME = """
[[exceptions]]
name = "localtime"
rule = "sensitive-mount"
bind = "/etc/localtime:ro"
why = "containers read the host's time zone"
"""


def test_bind_exception_covers_exactly_the_named_source_read_only(tmp_path):
    pol = policy_from(tmp_path, LOCALTIME)
    out = create(hc(Binds=["/etc/localtime:/etc/localtime:ro"]), policy=pol)
    allowed(out)
    assert out.record["exceptions"] == ["localtime"] and out.record["decision"] == "allow"
    # Mounts form too
    out = create(hc(Mounts=[{"Type": "bind", "Source": "/etc/localtime", "Target": "/etc/localtime",
                             "ReadOnly": True}]), policy=pol)
    allowed(out)
    for bad in ("/etc/localtime:/etc/localtime", "/etc/localtime:/etc/localtime:rw", "/etc:/x:ro",
                "/etc/shadow:/x:ro", "/etc/localtime/../shadow:/x:ro"):
        out = create(hc(Binds=[bad]), policy=pol)
        denied_by(out, "sensitive-mount")
        assert out.record["exceptions"] == [], bad


def test_bind_exception_does_not_cover_a_symlink_resolving_to_it(tmp_path):
    pol = policy_from(tmp_path, LOCALTIME)
    out = create(hc(Binds=["/tmp/tz:/etc/localtime:ro"]), policy=pol,
                 realpaths={"/tmp/tz": "/etc/localtime"})
    denied_by(out, "sensitive-mount")


def test_exception_leaves_the_rest_of_the_rule_in_force(tmp_path):
    pol = policy_from(tmp_path, LOCALTIME)
    out = create(hc(Binds=["/etc/localtime:/etc/localtime:ro", "/etc/shadow:/s:ro"]), policy=pol)
    msg = denied_by(out, "sensitive-mount")
    assert "/etc/shadow" in msg and "/etc/localtime" not in msg
    assert out.record["exceptions"] == ["localtime"]


def test_capability_exception(tmp_path):
    pol = policy_from(tmp_path, """
[[exceptions]]
name = "vpn-netadmin"
rule = "dangerous-capability"
capability = "NET_ADMIN"
image = "registry.local/vpn:1"
""")
    allowed(create({"Image": "registry.local/vpn:1", "HostConfig": {"CapAdd": ["CAP_NET_ADMIN"]}}, policy=pol))
    # the selector narrows: another image is refused; another capability too
    denied_by(create({"Image": "busybox", "HostConfig": {"CapAdd": ["NET_ADMIN"]}}, policy=pol),
              "dangerous-capability")
    out = create({"Image": "registry.local/vpn:1", "HostConfig": {"CapAdd": ["NET_ADMIN", "SYS_ADMIN"]}},
                 policy=pol)
    assert "SYS_ADMIN" in denied_by(out, "dangerous-capability")
    assert out.record["image"] == "registry.local/vpn:1"


def test_device_exception_matches_the_node(tmp_path):
    pol = policy_from(tmp_path, """
[[exceptions]]
name = "kmsg"
rule = "sensitive-device"
device = "/dev/kmsg"
""")
    kmsg = ("c", os.major(os.stat("/dev/kmsg").st_rdev), os.minor(os.stat("/dev/kmsg").st_rdev))
    nodes = {"/dev/kmsg": kmsg, "/dev/mem": ("c", 1, 1)}
    dev = lambda h: hc(Devices=[{"PathOnHost": h, "PathInContainer": "/dev/x",  # noqa: E731
                                 "CgroupPermissions": "r"}])
    out = create(dev("/dev/kmsg"), policy=pol, device_nodes=nodes)
    allowed(out)
    assert out.record["exceptions"] == ["kmsg"]
    denied_by(create(dev("/dev/mem"), policy=pol, device_nodes=nodes), "sensitive-device")


def test_label_selector(tmp_path):
    pol = policy_from(tmp_path, LOCALTIME + 'label = "tz=host"\n')
    body = hc(Binds=["/etc/localtime:/etc/localtime:ro"])
    denied_by(create(body, policy=pol), "sensitive-mount")
    body["Labels"] = {"tz": "host"}
    allowed(create(body, policy=pol))


@pytest.mark.parametrize("text,err", [
    ('[[exceptions]]\nname = "x"\nrule = "sensitive-mount"\n', "exactly one concrete value"),
    ('[[exceptions]]\nname = "x"\nrule = "sensitive-mount"\nbind = "/etc/localtime"\n', "PATH:ro or PATH:rw"),
    ('[[exceptions]]\nname = "x"\nrule = "sensitive-mount"\nbind = "/etc/../etc:ro"\n', "normalised absolute"),
    ('[[exceptions]]\nname = "x"\nrule = "sensitive-mount"\nbind = "/:rw"\n', "normalised absolute"),
    ('[[exceptions]]\nname = "x"\nrule = "dangerous-capability"\ncapability = "ALL"\n', "one capability"),
    ('[[exceptions]]\nname = "x"\nrule = "nope"\ncapability = "NET_ADMIN"\n', "not a known rule"),
    ('[[exceptions]]\nname = "x"\nrule = "sensitive-device"\ndevice = "/etc/x"\n', "under /dev"),
    ('[[exceptions]]\nname = "x"\nrule = "sensitive-mount"\nbind = "/a:ro"\nfoo = "1"\n', "unknown key"),
    ('[[exceptions]]\nname = "x"\nrule = "sensitive-mount"\nbind = "/a:ro"\n'
     '[[exceptions]]\nname = "x"\nrule = "sensitive-mount"\nbind = "/b:ro"\n', "used twice"),
    ('mode = "permissive"\n', "mode must be"),
    ('[audit]\nallowed = "some"\n', "audit.allowed"),
])
def test_bad_operations_sections_are_refused(tmp_path, text, err):
    with pytest.raises(policies.PolicyError, match=err):
        policy_from(tmp_path, text)


def test_rollout_mode_turns_every_deny_into_audit(tmp_path):
    pol = policy_from(tmp_path, 'mode = "audit"\n')
    assert pol.mode == "audit" and "deny" not in pol.levels.values()
    out = create(hc(Privileged=True, Binds=["/etc:/etc"]), policy=pol)
    allowed(out)
    assert out.record["decision"] == "audit"
    assert {"privileged", "sensitive-mount"} <= set(out.record["rule"])


def test_audit_schema_is_stable_for_every_decision(tmp_path):
    pol = policy_from(tmp_path, '[audit]\nallowed = "all"\n')
    recs = [create(policy=pol).record, create(hc(Privileged=True), policy=pol).record,
            create(hc(Binds=["/srv/x.conf:/x"]), policy=pol, regular_files={"/srv/x.conf"}).record]
    assert [r["decision"] for r in recs] == ["allow", "deny", "audit"]
    for r in recs:
        assert set(r) == set(SCHEMA)
        assert isinstance(r["rule"], list) and isinstance(r["exceptions"], list)
        assert r["policy_hash"] == pol.policy_hash and r["image"] == "busybox"
    assert len({r["decision_id"] for r in recs}) == 3
    none = policy_from(tmp_path, '[audit]\nallowed = "none"\n')
    assert create(policy=none).records == []


def test_policy_hash_follows_the_file(tmp_path):
    a = policy_from(tmp_path, "[rules]\nprivileged = \"deny\"\n").policy_hash
    b = policy_from(tmp_path, "[rules]\nprivileged = \"audit\"\n").policy_hash
    assert a != b and len(a) == 16 and policies.load().policy_hash not in (a, b)


def test_denial_has_no_prefix_of_its_own():
    """dockerd already writes 'authorization denied by plugin NAME: '."""
    out = create(hc(Privileged=True))
    assert out.msg.startswith("[privileged] ") and "dockguard:" not in out.msg


def test_client_is_the_user_agent(tmp_path):
    out = create(hc(Privileged=True), headers={"User-Agent": "dockguard-healthd/1.0"})
    assert out.record["client"] == "dockguard-healthd/1.0"
    _ = FakeContext


def test_healthd_kills_are_recorded_not_advised_against():
    from .helpers import decide
    out = decide("POST", "/v1.41/containers/web/kill?signal=KILL",
                 headers={"User-Agent": "dockguard-healthd/0.1", "Content-Length": "0"})
    allowed(out)
    assert out.record["decision"] == "allow" and out.record["client"] == "dockguard-healthd/0.1"
    out = decide("POST", "/v1.41/containers/web/kill?signal=KILL",
                 headers={"User-Agent": "Docker-Client/28.0.0", "Content-Length": "0"})
    assert out.record["decision"] == "audit" and out.record["rule"] == ["kill"]


def test_healthd_sends_its_user_agent(tmp_path):
    from healthd import service
    svc = service.Service("unix:///nonexistent.sock", tmp_path)
    assert svc.client().headers["User-Agent"] == service.USER_AGENT
    assert service.USER_AGENT.startswith("dockguard-healthd/")


def test_healthd_logs_json(capsys):
    import io
    import json
    import logging
    from dockguard import jsonlog
    s = io.StringIO()
    jsonlog.setup("healthd", "INFO", "json", stream=s)
    logging.getLogger("healthd").warning("web (abc): unhealthy and exit-on-unhealthy=true: killing it")
    rec = json.loads(s.getvalue().splitlines()[-1])
    assert rec["component"] == "healthd" and rec["level"] == "warning" and "killing it" in rec["msg"]
    assert set(rec) >= {"time", "version", "component", "level", "msg"}


def test_bind_exception_needs_the_exact_spelling(tmp_path):
    pol = policy_from(tmp_path, LOCALTIME)
    for other in ("/etc/localtime/", "/etc//localtime", "/etc/x/../localtime"):
        denied_by(create(hc(Binds=[f"{other}:/etc/localtime:ro"]), policy=pol), "sensitive-mount")


def test_label_selector_sees_the_image_labels(tmp_path):
    pol = policy_from(tmp_path, LOCALTIME + 'label = "tz=host"\n')
    body = hc(Binds=["/etc/localtime:/etc/localtime:ro"])
    allowed(create(body, policy=pol, image_configs={"busybox": {"Labels": {"tz": "host"}}}))
    body["Labels"] = {"tz": "utc"}  # the container's own label wins, as in dockerd
    denied_by(create(body, policy=pol, image_configs={"busybox": {"Labels": {"tz": "host"}}}),
              "sensitive-mount")
