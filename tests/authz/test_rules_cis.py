"""The cis profile (authz/rules/cis.py, authz/cis_policy.toml): each rule with its benign
twin, profile selection and precedence, existing containers, updates, and old-API starts."""
from __future__ import annotations

import copy

import pytest

from authz import existing
from authz import policy as policies
from authz.rules import all_rules

from .helpers import FakeContext, allowed, decide, default_policy, denied_by

CIS_RULES = {rid for rid in all_rules() if rid.startswith("cis-")}


class CisContext(FakeContext):
    def __init__(self, *, security_options=("name=seccomp,profile=builtin",), **kw):
        super().__init__(**kw)
        self.security_options = list(security_options)

    def daemon_security_options(self):
        self._lookup("security_options")
        return list(self.security_options)


@pytest.fixture(scope="module")
def cis(tmp_path_factory):
    path = tmp_path_factory.mktemp("cis") / "policy.toml"
    path.write_text(policies.profile_text("cis"))
    return policies.load(path)


def good(**over):
    """A create the cis profile allows: every limit, read-only, no-new-privileges, health."""
    body = {"Image": "busybox", "Cmd": ["sleep", "60"],
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000},
            "HostConfig": {"Memory": 64 << 20, "NanoCpus": 500_000_000, "PidsLimit": 64,
                           "ReadonlyRootfs": True, "SecurityOpt": ["no-new-privileges"],
                           "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 5}}}
    for k, v in over.items():
        if k in ("Healthcheck", "Labels", "Image"):
            body[k] = v
        elif v is None:
            body["HostConfig"].pop(k, None)
        else:
            body["HostConfig"][k] = v
    return body


def noted(out) -> list[str]:
    """The rule ids the decision's audit record names (allowed or audited)."""
    rec = out.records[-1]
    return rec.get("rule", rec.get("rules"))


def run(policy, body, uri="/v1.41/containers/create", method="POST", **ctx_kw):
    return decide(method, uri, body, policy=policy, ctx=CisContext(lists=policy.lists, **ctx_kw))


def test_profile_off_by_default_and_on_with_profile(cis):
    for rid in CIS_RULES:
        assert default_policy().level(rid) == "off", rid
    assert {rid for rid in CIS_RULES if cis.level(rid) != "off"} == CIS_RULES - {"cis-restart-always"}
    assert cis.level("cis-exec-root") == "audit" and cis.level("cis-selinux") == "audit"
    assert cis.level("privileged") == "deny"  # the guide's rules stay
    # the guide policy lets a create without limits through; the cis profile does not
    bare = {"Image": "busybox", "Cmd": ["true"]}
    allowed(run(default_policy(), bare))
    out = run(cis, bare)
    for rid in ("cis-memory", "cis-cpu", "cis-pids-limit", "cis-read-only-rootfs",
                "cis-no-new-privileges", "cis-healthcheck"):
        denied_by(out, rid)
    allowed(run(cis, good()))


def test_operator_rules_override_the_profile(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('profile = "cis"\n[rules]\ncis-read-only-rootfs = "off"\ncis-restart-always = "deny"\n'
                 'privileged = "audit"\n[lists]\nallowed_devices = ["/dev/fuse"]\n'
                 'allowed_capabilities = ["cap_net_admin"]\n')
    pol = policies.load(p)
    assert pol.level("cis-read-only-rootfs") == "off" and pol.level("cis-restart-always") == "deny"
    assert pol.level("privileged") == "audit" and pol.level("cis-memory") == "deny"
    assert pol.lists.allowed_devices == frozenset({"/dev/fuse"})
    assert pol.lists.allowed_capabilities == frozenset({"NET_ADMIN"})
    allowed(run(pol, good(ReadonlyRootfs=False)))


@pytest.mark.parametrize("text,err", [
    ('profile = "nist"\n', "profile must be one of 'guide', 'cis'"),
    ('profile = 1\n', "profile must be one of"),
    ('profile = "cis"\n[lists]\nallowed_devices = ["dev/fuse"]\n', "must be an absolute path"),
])
def test_bad_profile_is_a_clear_error(tmp_path, text, err):
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(policies.PolicyError, match=err):
        policies.load(p)


def test_guide_profile_is_the_default(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('profile = "guide"\n')
    assert policies.load(p).levels == default_policy().levels
    assert policies.profile_text("guide") == policies.default_text()


# --- each rule and its benign twin ---------------------------------------------------------

@pytest.mark.parametrize("rule,bad,benign", [
    ("cis-capabilities", good(CapAdd=["IPC_OWNER"]), good(CapAdd=["CHOWN", "cap_net_bind_service"])),
    ("cis-capabilities", good(CapAdd=["LEASE"]), good(CapAdd=["KILL"])),
    ("cis-capabilities", good(CapAdd="all"), good(CapAdd="AUDIT_WRITE")),
    ("cis-devices", good(Devices=[{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse",
                                   "CgroupPermissions": "rwm"}]), good(Devices=[])),
    ("cis-mount-propagation", good(Binds=["/srv/data:/data:rshared"]), good(Binds=["/srv/data:/data:rslave"])),
    ("cis-mount-propagation", good(Binds=["/srv/data:/data:ro,shared"]), good(Binds=["/srv/data:/data:ro"])),
    ("cis-mount-propagation",
     good(Mounts=[{"Type": "bind", "Source": "/srv", "Target": "/s", "BindOptions": {"Propagation": "shared"}}]),
     good(Mounts=[{"Type": "bind", "Source": "/srv", "Target": "/s", "BindOptions": {"Propagation": "slave"}}])),
    ("cis-restart-on-failure", good(RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 6}),
     good(RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 3})),
    ("cis-restart-on-failure", good(RestartPolicy={"Name": "on-failure"}), good(RestartPolicy={"Name": "no"})),
    ("cis-memory", good(Memory=None), good(Memory=32 << 20)),
    ("cis-cpu", good(NanoCpus=None), good(NanoCpus=None, CpuShares=512)),
    ("cis-cpu", good(NanoCpus=None, CpuQuota=50000), good(NanoCpus=1_000_000_000)),
    ("cis-pids-limit", good(PidsLimit=None), good(PidsLimit=1)),
    ("cis-pids-limit", good(PidsLimit=-1), good(PidsLimit=100)),
    ("cis-read-only-rootfs", good(ReadonlyRootfs=False), good(ReadonlyRootfs=True)),
    ("cis-no-new-privileges", good(SecurityOpt=[]), good(SecurityOpt=["no-new-privileges:true"])),
    ("cis-no-new-privileges", good(SecurityOpt=["no-new-privileges", "no-new-privileges=false"]),
     good(SecurityOpt=["no-new-privileges=true"])),
    ("cis-healthcheck", good(Healthcheck=None), good(Healthcheck=None, Labels={"dockguard.health.cmd": "true"})),
    ("cis-healthcheck", good(Healthcheck={"Test": ["NONE"]}), good(Healthcheck={"Test": ["CMD-SHELL", "true"]})),
])
def test_rule_and_benign_twin(cis, rule, bad, benign):
    msg = denied_by(run(cis, bad), rule)
    assert "CIS Docker" in msg
    allowed(run(cis, benign))


def test_image_healthcheck_counts(cis):
    img = {"img-hc": {"Healthcheck": {"Test": ["CMD", "true"]}}, "img-none": {"Healthcheck": {"Test": ["NONE"]}}}
    allowed(run(cis, good(Healthcheck=None, Image="img-hc"), image_configs=img))
    denied_by(run(cis, good(Healthcheck=None, Image="img-none"), image_configs=img), "cis-healthcheck")
    # an image's dockguard.health.* label counts too (merged labels)
    img["img-lbl"] = {"Labels": {"dockguard.health.tcp": "80"}}
    allowed(run(cis, good(Healthcheck=None, Image="img-lbl"), image_configs=img))


def test_listed_device_and_capability_allowed(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('profile = "cis"\n[lists]\nallowed_devices = ["/dev/fuse"]\nallowed_capabilities = ["IPC_OWNER"]\n')
    pol = policies.load(p)
    fuse = {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}
    allowed(run(pol, good(Devices=[fuse], CapAdd=["CAP_IPC_OWNER"])))
    denied_by(run(pol, good(Devices=[dict(fuse, PathOnHost="/dev/net/tun")])), "cis-devices")
    # the guide's own list is not opened by the cis list
    p.write_text('profile = "cis"\n[lists]\nallowed_capabilities = ["SYS_ADMIN"]\n')
    denied_by(run(policies.load(p), good(CapAdd=["SYS_ADMIN"])), "dangerous-capability")


def test_restart_always_where_the_policy_says_so(cis, tmp_path):
    allowed(run(cis, good(RestartPolicy={"Name": "always"})))
    p = tmp_path / "p.toml"
    p.write_text('profile = "cis"\n[rules]\ncis-restart-always = "deny"\n')
    pol = policies.load(p)
    denied_by(run(pol, good(RestartPolicy={"Name": "unless-stopped"})), "cis-restart-always")
    allowed(run(pol, good()))


def test_top_level_memory_and_cpu_shares_count_as_dockerd_copies_them(cis):
    body = good(Memory=None, NanoCpus=None)
    body["Memory"], body["CpuShares"] = 64 << 20, 512
    allowed(run(cis, body))


def test_daemon_wide_no_new_privileges(cis):
    opts = ("name=seccomp,profile=builtin", "name=no-new-privileges")
    allowed(run(cis, good(SecurityOpt=[]), security_options=opts))
    # turned off for one container: refused even so
    denied_by(run(cis, good(SecurityOpt=["no-new-privileges=false"]), security_options=opts),
              "cis-no-new-privileges")
    # the daemon cannot be asked: fail closed
    out = run(cis, good(SecurityOpt=[]), fail={"security_options"})
    assert "could not look up" in denied_by(out, "cis-no-new-privileges")


def test_apparmor_and_selinux_where_the_host_has_them(cis):
    out = run(cis, good(SecurityOpt=["no-new-privileges", "apparmor=unconfined"]))
    assert out.rules == ("apparmor-unconfined",)  # the guide's rule; cis-apparmor: no AppArmor here
    aa = ("name=apparmor", "name=seccomp,profile=builtin")
    denied_by(run(cis, good(SecurityOpt=["no-new-privileges", "apparmor=unconfined"]), security_options=aa),
              "cis-apparmor")
    allowed(run(cis, good(SecurityOpt=["no-new-privileges", "apparmor=docker-default"]), security_options=aa))
    se = ("name=selinux",)
    out = run(cis, good(), security_options=se)  # audit: allowed, recorded
    assert out.allow and "cis-selinux" in noted(out)
    out = run(cis, good(SecurityOpt=["no-new-privileges", "label=level:s0:c100,c200"]), security_options=se)
    assert out.allow and "cis-selinux" not in noted(out)
    # no SELinux on the host: nothing asked of the container
    out = run(cis, good())
    assert out.allow and noted(out) == []


def test_exec_as_root_is_audited(cis):
    for user in ("root", "0", "0:0", "root:root"):
        out = run(cis, {"Cmd": ["id"], "User": user}, uri="/v1.41/containers/c1/exec")
        assert out.allow and "cis-exec-root" in noted(out), user
    for user in ("", "1000", "nobody", "rooty"):
        out = run(cis, {"Cmd": ["id"], "User": user}, uri="/v1.41/containers/c1/exec")
        assert "cis-exec-root" not in noted(out), user


def test_update_that_lifts_a_limit(cis):
    uri = "/v1.41/containers/c1/update"
    denied_by(run(cis, {"PidsLimit": -1}, uri=uri), "cis-pids-limit")
    denied_by(run(cis, {"PidsLimit": 0}, uri=uri), "cis-pids-limit")
    denied_by(run(cis, {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 10}}, uri=uri),
              "cis-restart-on-failure")
    denied_by(run(cis, {"CpuQuota": -1}, uri=uri), "cis-cpu")
    allowed(run(cis, {"PidsLimit": 50, "Memory": 32 << 20, "CpuQuota": 20000}, uri=uri))
    allowed(run(cis, {"PidsLimit": None, "CpuShares": 256}, uri=uri))


def test_old_api_start_body_replaces_the_host_config(cis):
    out = run(cis, {"Binds": []}, uri="/v1.23/containers/c1/start")
    denied_by(out, "cis-memory")


# --- existing containers -------------------------------------------------------------------

INSPECT = {
    "Id": "c" * 64, "Name": "/old", "AppArmorProfile": "",
    "Config": {"Image": "busybox", "Cmd": ["sleep", "60"], "Labels": {},
               "Healthcheck": {"Test": ["CMD", "true"]}},
    "HostConfig": {"Memory": 64 << 20, "NanoCpus": 500_000_000, "PidsLimit": 64, "ReadonlyRootfs": True,
                   "SecurityOpt": ["no-new-privileges"], "CapAdd": None, "Devices": [],
                   "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 5}},
    "Mounts": [{"Type": "bind", "Source": "/srv", "Destination": "/s", "RW": True, "Propagation": "rprivate"}],
}


def _judge(cis, info, **ctx_kw):
    ctx = CisContext(lists=cis.lists, **ctx_kw)
    rules = [(r, lv) for r, lv in existing.rules_for_existing(cis) if r.id.startswith("cis-")]
    return {f.rule for f in existing.judge(None, info, ctx, rules)}


@pytest.mark.parametrize("path,value,rule", [
    (("HostConfig", "Memory"), 0, "cis-memory"),
    (("HostConfig", "NanoCpus"), 0, "cis-cpu"),
    (("HostConfig", "PidsLimit"), None, "cis-pids-limit"),
    (("HostConfig", "ReadonlyRootfs"), False, "cis-read-only-rootfs"),
    (("HostConfig", "SecurityOpt"), None, "cis-no-new-privileges"),
    (("HostConfig", "CapAdd"), ["LEASE"], "cis-capabilities"),
    (("HostConfig", "Devices"), [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse",
                                  "CgroupPermissions": "rwm"}], "cis-devices"),
    (("HostConfig", "RestartPolicy"), {"Name": "on-failure", "MaximumRetryCount": 9}, "cis-restart-on-failure"),
    (("Config", "Healthcheck"), None, "cis-healthcheck"),
])
def test_existing_container_judged_by_the_profile(cis, path, value, rule):
    assert _judge(cis, INSPECT) == set()
    info = copy.deepcopy(INSPECT)
    info[path[0]][path[1]] = value
    assert _judge(cis, info) == {rule}


def test_existing_container_propagation_and_apparmor(cis):
    info = copy.deepcopy(INSPECT)
    info["Mounts"][0]["Propagation"] = "rshared"
    assert _judge(cis, info) == {"cis-mount-propagation"}
    aa = ("name=apparmor",)
    assert _judge(cis, INSPECT, security_options=aa) == {"cis-apparmor"}  # AppArmorProfile ""
    info = copy.deepcopy(INSPECT)
    info["AppArmorProfile"] = "docker-default"
    assert _judge(cis, info, security_options=aa) == set()


def test_exceptions_apply_to_cis_rules(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('profile = "cis"\n[[exceptions]]\nname = "ipc"\nrule = "cis-capabilities"\n'
                 'capability = "IPC_OWNER"\nwhy = "the workload needs it"\n')
    pol = policies.load(p)
    allowed(run(pol, good(CapAdd=["IPC_OWNER"])))
    denied_by(run(pol, good(CapAdd=["IPC_OWNER", "LEASE"])), "cis-capabilities")


def test_policy_hash_covers_the_profile(tmp_path, monkeypatch):
    """The same file under another version of the profile is another policy (audit lines)."""
    a = tmp_path / "a.toml"
    a.write_text('profile = "cis"\n')
    before = policies.load(a).policy_hash
    text = policies.profile_text("cis").replace('cis-exec-root = "audit"', 'cis-exec-root = "deny"')
    real = policies.profile_text
    monkeypatch.setattr(policies, "profile_text", lambda n: text if n == "cis" else real(n))
    pol = policies.load(a)
    assert pol.level("cis-exec-root") == "deny" and pol.policy_hash != before


@pytest.mark.parametrize("argv,config,want", [
    (["dockerd"], {}, False),
    (["dockerd", "--no-new-privileges"], {}, True),
    (["dockerd", "--no-new-privileges=true"], None, True),
    (["dockerd", "--no-new-privileges=false"], {"no-new-privileges": True}, False),  # the flag wins
    (["dockerd", "--no-new-privileges", "--no-new-privileges=0"], {}, False),        # the last one
    (["dockerd"], {"no-new-privileges": True}, True),
    (["dockerd"], {"no-new-privileges": "true"}, False),  # dockerd refuses a string there
    (["dockerd", "--", "--no-new-privileges"], {}, False),
])
def test_daemon_wide_no_new_privileges_from_dockerds_command_line_and_config(argv, config, want):
    """Where dockerd 20.10 hides it from `docker info`, as docker-bench reads it."""
    from authz import daemondirs
    assert daemondirs.dockerd_dirs(argv, config).no_new_privileges is want
