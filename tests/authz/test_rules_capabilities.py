"""dangerous-capability: every spelling, both fields, containers, old-API start and services."""
from __future__ import annotations

import pytest

from authz import policy as policies
from authz.rules.capabilities import DEFAULT_DANGEROUS, normalise

from .helpers import FakeContext, allowed, create, create_problems, decide, denied_by, hc


@pytest.mark.parametrize("cap", ["SYS_ADMIN", "sys_admin", "Sys_Admin", "CAP_SYS_ADMIN", "cap_sys_admin",
                                 "Cap_Sys_Admin", " SYS_ADMIN ", "ALL", "all", "CAP_ALL", "NET_ADMIN",
                                 "SYS_MODULE", "DAC_READ_SEARCH", "SYS_PTRACE", "BPF", "MAC_ADMIN", "SYS_TIME"])
def test_dangerous_spellings_are_denied(cap):
    msg = denied_by(create(hc(CapAdd=[cap])), "dangerous-capability")
    assert f"capability {cap!r}" in msg


@pytest.mark.parametrize("cap", ["CHOWN", "cap_chown", "NET_BIND_SERVICE", "AUDIT_WRITE", "KILL", "SETUID"])
def test_harmless_capabilities_are_allowed(cap):
    allowed(create(hc(CapAdd=[cap])))


def test_cap_add_as_a_bare_string():
    denied_by(create(hc(CapAdd="SYS_ADMIN")), "dangerous-capability")
    allowed(create(hc(CapAdd="CHOWN")))


def test_capabilities_field_is_ignored_as_dockerd_ignores_it():
    # HostConfig.Capabilities was API 1.40 (Docker 19.03) only: dockerd 20.10 and 26 drop it
    # (checked: inspect shows none, the container has the default set)
    allowed(create(hc(Capabilities=["CAP_SYS_ADMIN", "CAP_CHOWN"])))


def test_every_dangerous_one_named():
    caps = sorted(DEFAULT_DANGEROUS)
    got = create_problems("dangerous-capability", hc(CapAdd=caps))
    assert got == [f"capability {c!r}" for c in caps]


def test_top_level_and_folded_cap_add():
    denied_by(create({"Image": "x", "Cmd": ["true"], "CapAdd": ["SYS_ADMIN"]}), "dangerous-capability")
    denied_by(create('{"Image":"x","Cmd":["true"],"HostConfig":{"capadd":["net_admin"]}}'), "dangerous-capability")
    denied_by(create('{"Image":"x","Cmd":["true"],"Ho\u017ftConfig":{"CapAdd":"ALL"}}'), "dangerous-capability")


def test_cap_drop_is_not_an_addition():
    allowed(create(hc(CapDrop=["ALL"])))


def test_old_api_start_and_service():
    denied_by(decide("POST", "/v1.23/containers/x/start", {"CapAdd": ["SYS_ADMIN"]}), "dangerous-capability")
    body = {"TaskTemplate": {"ContainerSpec": {"Image": "x", "CapabilityAdd": ["CAP_NET_ADMIN"]}}}
    denied_by(decide("POST", "/services/create", body), "dangerous-capability")
    denied_by(decide("POST", "/services/s/update", body), "dangerous-capability")
    allowed(decide("POST", "/services/create", {"TaskTemplate": {"ContainerSpec": {"Image": "x",
                                                                                   "CapabilityAdd": ["CAP_CHOWN"]}}}))


def test_policy_list_extends(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[lists]\ndangerous_capabilities = ["cap_chown"]\n')
    pol = policies.load(p)
    denied_by(create(hc(CapAdd=["CHOWN"]), policy=pol), "dangerous-capability")
    denied_by(create(hc(CapAdd=["SYS_ADMIN"]), policy=pol), "dangerous-capability")
    assert create_problems("dangerous-capability", hc(CapAdd=["CHOWN"]), ctx=FakeContext(lists=pol.lists))


def test_normalise():
    assert normalise(" cap_sys_admin ") == "SYS_ADMIN"
    assert normalise("CAP_") == ""
    assert normalise("capable") == "CAPABLE"
