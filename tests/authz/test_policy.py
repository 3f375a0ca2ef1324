"""authz.policy: the built-in default, TOML overlays, and every way a policy file is wrong."""
from __future__ import annotations

import tomllib

import pytest

from authz import policy as policies
from authz.policy import PolicyError
from authz.rules import LEVELS, all_checks, all_rules


def write(tmp_path, text):
    p = tmp_path / "policy.toml"
    p.write_text(text)
    return p


def test_default_loads_and_names_every_rule():
    pol = policies.load()
    assert pol.source == "built-in default"
    doc = tomllib.loads(policies.default_text())
    cis = tomllib.loads(policies.profile_text("cis"))["rules"]  # the cis profile's own rules
    assert set(doc["rules"]) | set(cis) == set(all_checks()), "a built-in policy must list every rule and stage"
    assert set(all_rules()) < set(all_checks())
    assert not set(doc["rules"]) & set(cis)
    for rid, r in all_checks().items():
        assert pol.level(rid) == doc["rules"].get(rid, "off"), rid
        assert pol.level(rid) in LEVELS
    assert pol.level("privileged") == "deny"
    assert pol.level("kill") == "audit"
    assert pol.level("unknown-route") == "audit"
    assert (pol.max_inflight, pol.inflight_ttl, pol.lookup_timeout) == (1000, 300.0, 10.0)


def test_default_lists():
    lists = policies.load().lists
    for p in ("/", "/etc", "/proc", "/sys", "/var/lib/docker", "/var/run/docker.sock", "/root/.docker"):
        assert p in lists.sensitive_paths
    assert {"/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg"} <= lists.sensitive_devices
    assert {"SYS_ADMIN", "NET_ADMIN", "SYS_MODULE", "DAC_READ_SEARCH", "BPF"} <= lists.dangerous_capabilities
    assert "CHOWN" not in lists.dangerous_capabilities


def test_by_action_skips_off_rules(tmp_path):
    pol = policies.load()
    ids = [r.id for r, _lvl in pol.by_action["container.create"]]
    assert "privileged" in ids and "sensitive-mount" in ids
    pol = policies.load(write(tmp_path, '[rules]\nprivileged = "off"\n'))
    ids = [r.id for r, _lvl in pol.by_action["container.create"]]
    assert "privileged" not in ids
    assert pol.level("privileged") == "off"


def test_overlay_levels(tmp_path):
    p = write(tmp_path, '[rules]\nunknown-route = "deny"\nkill = "deny"\nprivileged = "audit"\n')
    pol = policies.load(p)
    assert pol.source == str(p)
    assert (pol.level("unknown-route"), pol.level("kill"), pol.level("privileged")) == ("deny", "deny", "audit")
    assert pol.level("force-remove") == "deny"  # untouched rules keep the default
    assert dict((r.id, lvl) for r, lvl in pol.by_action["container.create"])["privileged"] == "audit"


def test_lists_extend_never_shrink(tmp_path):
    p = write(tmp_path, '[lists]\nsensitive_paths = ["/srv/secret/", "//data//x"]\n'
                        'sensitive_devices = ["/dev/sdz"]\ndangerous_capabilities = ["cap_chown", " Kill "]\n')
    lists = policies.load(p).lists
    assert "/srv/secret" in lists.sensitive_paths and "/data/x" in lists.sensitive_paths
    assert "/etc" in lists.sensitive_paths
    assert "/dev/sdz" in lists.sensitive_devices and "/dev/mem" in lists.sensitive_devices
    assert {"CHOWN", "KILL", "SYS_ADMIN"} <= lists.dangerous_capabilities
    # an empty list is no shrinking
    assert "/etc" in policies.load(write(tmp_path, "[lists]\nsensitive_paths = []\n")).lists.sensitive_paths


def test_limits(tmp_path):
    pol = policies.load(write(tmp_path, "[limits]\nmax_inflight = 2\ninflight_ttl_seconds = 1.5\n"
                                        "lookup_timeout_seconds = 3\n"))
    assert (pol.max_inflight, pol.inflight_ttl, pol.lookup_timeout) == (2, 1.5, 3.0)


@pytest.mark.parametrize("text,match", [
    ('[rules]\nno-such-rule = "deny"\n', r"unknown rule 'no-such-rule'; known: .*privileged"),
    ('[rules]\nprivileged = "block"\n', r"rule privileged must be one of deny, audit, off, not 'block'"),
    ('[rules]\nprivileged = true\n', r"rule privileged must be one of deny, audit, off, not True"),
    ('[rules]\nprivileged = "DENY"\n', r"must be one of deny, audit, off"),
    ("[rulez]\n", r"unknown section \[rulez\] \(rules, lists, limits, hookspec, audit, exceptions"),
    ('rules = "deny"\n', r"\[rules\] must be a table"),
    ('[lists]\nsensitive_pathz = ["/x"]\n', r"unknown list 'sensitive_pathz'; known: .*dangerous_capabilities"),
    ('[lists]\nsensitive_paths = "/x"\n', r"lists.sensitive_paths must be a list of strings"),
    ('[lists]\nsensitive_paths = [1]\n', r"lists.sensitive_paths must be a list of strings"),
    ('[lists]\nsensitive_paths = ["srv/x"]\n', r"lists.sensitive_paths entry 'srv/x' must be an absolute path"),
    ('[lists]\nsensitive_devices = ["dev/x"]\n', r"lists.sensitive_devices entry 'dev/x' must be an absolute path"),
    ("[limits]\nmax_inflightt = 2\n", r"unknown limit 'max_inflightt'; known: inflight_ttl_seconds"),
    ("[limits]\nmax_inflight = 0\n", r"limits.max_inflight must be a positive number, not 0"),
    ("[limits]\nmax_inflight = -1\n", r"must be a positive number"),
    ("[limits]\nmax_inflight = 1.5\n", r"limits.max_inflight must be a positive number, not 1.5"),
    ("[limits]\nmax_inflight = true\n", r"must be a positive number, not True"),
    ('[limits]\ninflight_ttl_seconds = "5"\n', r"limits.inflight_ttl_seconds must be a positive number"),
    ("[rules\n", r"is not valid TOML"),
    ('[rules]\nprivileged = "deny"\nprivileged = "off"\n', r"is not valid TOML"),
])
def test_policy_errors_are_clear(tmp_path, text, match):
    p = write(tmp_path, text)
    with pytest.raises(PolicyError, match=match) as err:
        policies.load(p)
    assert str(p) in str(err.value)  # the message says which file


def test_unreadable_policy(tmp_path):
    with pytest.raises(PolicyError, match=r"cannot read policy .*nope.toml: No such file"):
        policies.load(tmp_path / "nope.toml")
    with pytest.raises(PolicyError, match="cannot read policy"):
        policies.load(tmp_path)  # a directory


def test_copy_of_default_is_accepted(tmp_path):
    pol = policies.load(write(tmp_path, policies.default_text()))
    assert pol.levels == policies.load().levels
    assert pol.lists == policies.load().lists
