"""dockguard-runtime under the cis profile: the two cis rules it runs (capabilities beyond
Docker's default set, shared bind propagation) over the OCI config, with the plugin's levels
and lists; the other cis rules stay with the plugin (docs/cis.md)."""
from __future__ import annotations

from authz import policy as policies
from hookbin import judge, rtpolicy

from . import ociconfigs
from .test_judge import Lists

CIS_LEVELS = {r: "deny" for r in judge.RUNTIME_RULES}


class CisLists(Lists):
    allowed_capabilities = frozenset({"LEASE"})


def judged(change=None, facts=None, levels=CIS_LEVELS):
    c = ociconfigs.config(change)
    spec = judge.spec_from_config(c, facts or {})
    ctx = judge.StaticContext(CisLists(), ociconfigs.ROOT, frozenset(), judge.device_nodes(c))
    denies, audits = judge.judge(spec, ctx, dict(levels))
    return [r for r, _ in denies], " ".join(t for _, t in denies)


def test_only_the_cheap_cis_rules_run_at_the_runtime():
    assert {r for r in judge.RUNTIME_RULES if r.startswith("cis-")} == {"cis-capabilities",
                                                                       "cis-mount-propagation"}


def test_docker_default_capabilities_pass_and_an_extra_one_is_refused():
    assert judged() == ([], "")

    def add(cap):
        def change(c):
            for s in ("bounding", "effective", "permitted"):
                c["process"]["capabilities"][s].append(cap)
        return change
    ids, text = judged(add("CAP_IPC_OWNER"))
    assert ids == ["cis-capabilities"] and "IPC_OWNER" in text and "Safely:" in text
    assert judged(add("CAP_LEASE")) == ([], "")  # listed in allowed_capabilities
    off = dict(CIS_LEVELS, **{"cis-capabilities": "off"})
    assert judged(add("CAP_IPC_OWNER"), levels=off) == ([], "")


def test_shared_propagation_on_a_pinned_bind_is_refused():
    def bind(prop):
        def change(c):
            c["mounts"].append({"destination": "/data", "type": "bind", "source": "/srv/data",
                                "options": ["rbind", prop]})
        return change
    i = len(ociconfigs.config()["mounts"])
    facts = {"binds": {i: [("bind of", "/srv/data")]}}
    ids, text = judged(bind("rshared"), facts)
    assert ids == ["cis-mount-propagation"] and "rshared" in text
    assert judged(bind("rprivate"), facts) == ([], "")
    assert judged(bind("rslave"), facts) == ([], "")


def test_runtime_policy_reads_the_profile(tmp_path):
    p = tmp_path / "policy.toml"
    p.write_text(policies.profile_text("cis"))
    view = rtpolicy.compile_view(str(p))
    assert view["levels"]["cis-capabilities"] == "deny"
    assert view["levels"]["cis-memory"] == "deny"  # compiled, though only the plugin runs it
    assert "allowed_capabilities" in view["lists"]
    assert rtpolicy.compile_view(None)["levels"]["cis-capabilities"] == "off"
