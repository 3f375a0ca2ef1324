"""Issue 13: the policy's exceptions apply in dockguard-runtime exactly as in the plugin
(same entries, same matching: authz/exceptions.py), on the pinned bind sources."""
from __future__ import annotations

import os

import pytest

from authz import exceptions, policy as policies
from authz.rules import all_rules
from hookbin import judge, rtpolicy

from . import ociconfigs
from .ociconfigs import ID
from .test_judge import Policy, _bind

EXC = exceptions.parse([
    {"name": "localtime", "rule": "sensitive-mount", "bind": "/etc/localtime:ro"},
    {"name": "netadmin", "rule": "dangerous-capability", "capability": "NET_ADMIN"},
], all_rules(), "test")


def _judge(tmp_path, change, exc=EXC):
    root = tmp_path / "root"
    (root / "containers").mkdir(parents=True, exist_ok=True)
    pol = Policy()
    pol.levels["file-bind-mount"] = "off"  # an audit in the default policy; its own exception
    pol.exceptions = exc
    applied = []
    c = ociconfigs.config(change, root=root)
    pinned, denies, _ = judge.check_config(c, str(root), ID, pol, applied=applied)
    for p in pinned.values():
        os.close(p.fd)
    return [r for r, _ in denies], applied


def _ro_bind(src, dest="/etc/localtime", ro=True):
    def change(c):
        _bind(c, src, dest)
        if ro:
            c["mounts"][-1]["options"].append("ro")
    return change


def test_localtime_read_only_is_excepted_as_given_and_as_pinned(tmp_path):
    # /etc/localtime is itself a symlink on Debian: the pinned path is the zone file it names
    assert _judge(tmp_path, _ro_bind("/etc/localtime")) == ([], ["localtime"])


@pytest.mark.parametrize("src,ro", [("/etc/localtime", False), ("/etc", True), ("/etc/hostname", True)])
def test_other_binds_are_still_refused(tmp_path, src, ro):
    denied, applied = _judge(tmp_path, _ro_bind(src, "/x", ro))
    assert denied == ["sensitive-mount"] and applied == []


def test_a_symlink_elsewhere_resolving_to_it_is_not_excepted(tmp_path):
    link = tmp_path / "tz"
    link.symlink_to("/etc/localtime")
    assert _judge(tmp_path, _ro_bind(link)) == (["sensitive-mount"], [])


def test_capability_exception_leaves_the_others(tmp_path):
    def caps(*names):
        def change(c):
            for s in judge.CAP_SETS:
                c["process"]["capabilities"].setdefault(s, []).extend(names)
        return change
    assert _judge(tmp_path, caps("CAP_NET_ADMIN")) == ([], ["netadmin"])
    denied, _ = _judge(tmp_path, caps("CAP_NET_ADMIN", "CAP_SYS_ADMIN"))
    assert denied == ["dangerous-capability"]


def test_runtime_policy_carries_the_exceptions(tmp_path):
    p = tmp_path / "policy.toml"
    p.write_text('[[exceptions]]\nname = "localtime"\nrule = "sensitive-mount"\nbind = "/etc/localtime:ro"\n')
    view = rtpolicy.compile_view(str(p))
    got = exceptions.from_dicts(view["exceptions"])
    assert [e.as_dict() for e in got] == [e.as_dict() for e in policies.load(p).exceptions]
    assert got[0].kind == "bind" and got[0].value == "/etc/localtime" and got[0].mode == "ro"


def test_rollout_mode_reaches_the_runtime(tmp_path):
    p = tmp_path / "policy.toml"
    p.write_text('mode = "audit"\n')
    assert "deny" not in rtpolicy.compile_view(str(p))["levels"].values()


def test_recursive_read_only_counts_as_read_only(tmp_path):
    """dockerd 25+ writes `rro` (recursive read-only) for -v ...:ro where the kernel has it."""
    def change(c):
        _bind(c, "/etc/localtime", "/etc/localtime")
        c["mounts"][-1]["options"].append("rro")
    assert _judge(tmp_path, change) == ([], ["localtime"])
