"""seccomp-unconfined, seccomp-profile (compiled with libseccomp via authz.seccomp),
apparmor-unconfined, selinux-disabled, writable-proc-sys."""
from __future__ import annotations

import json

import pytest

from authz import seccomp
from authz.rules.security import DEFAULT_MASKED, DEFAULT_READONLY, split_opt

from .helpers import allowed, create, create_problems, decide, denied_by, hc


def sec(*opts):
    return hc(SecurityOpt=list(opts))


# ---- seccomp=unconfined ----

@pytest.mark.parametrize("opt", ["seccomp=unconfined", "seccomp:unconfined", "seccomp=UNCONFINED",
                                 "Seccomp=unconfined", " seccomp = unconfined "])
def test_seccomp_unconfined(opt):
    msg = denied_by(create(sec(opt)), "seccomp-unconfined")
    assert f"--security-opt {opt}" in msg


@pytest.mark.parametrize("opt", ["no-new-privileges", "seccomp=builtin", "seccomp=", "apparmor=docker-default",
                                 "label=level:s0"])
def test_benign_security_opts(opt):
    allowed(create(sec(opt)))


def test_seccomp_unconfined_top_level_and_start_and_service():
    denied_by(create({"Image": "x", "Cmd": ["true"], "SecurityOpt": ["seccomp=unconfined"]}), "seccomp-unconfined")
    denied_by(decide("POST", "/v1.23/containers/x/start", {"SecurityOpt": ["seccomp:unconfined"]}),
              "seccomp-unconfined")
    body = {"TaskTemplate": {"ContainerSpec": {"Image": "x", "Privileges": {"Seccomp": {"Mode": "Unconfined"}}}}}
    denied_by(decide("POST", "/services/create", body), "seccomp-unconfined")
    body = {"TaskTemplate": {"ContainerSpec": {"Image": "x", "Privileges": {"Seccomp": {"Mode": "default"}}}}}
    allowed(decide("POST", "/services/create", body))


def test_split_opt():
    assert split_opt("seccomp=unconfined") == ("seccomp", "unconfined")
    assert split_opt("seccomp:unconfined") == ("seccomp", "unconfined")
    assert split_opt("label=type:spc_t") == ("label", "type:spc_t")  # '=' first, as dockerd
    assert split_opt("no-new-privileges") == ("no-new-privileges", "")


# ---- seccomp profiles ----

def _names_but(excluded):
    import pyseccomp
    arch = pyseccomp.system_arch()
    out = []
    for nr in range(0, 460):
        try:
            name = pyseccomp.resolve_syscall(arch, nr)
        except Exception:  # noqa: BLE001
            continue
        name = name.decode() if isinstance(name, bytes) else name
        if name and name not in excluded:
            out.append(name)
    return out


PROBES = {n for n, _ in seccomp.PROBES}
STRICT = {"defaultAction": "SCMP_ACT_ERRNO",
          "syscalls": [{"names": _names_but(PROBES), "action": "SCMP_ACT_ALLOW"},
                       {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}


def profile(doc):
    return doc if isinstance(doc, str) else json.dumps(doc)


def test_strict_profile_passes():
    assert seccomp.profile_problems(profile(STRICT)) == []
    allowed(create(sec("seccomp=" + profile(STRICT))))


def test_allow_all_profile_is_denied_naming_the_calls():
    msg = denied_by(create(sec("seccomp=" + profile({"defaultAction": "SCMP_ACT_ALLOW"}))), "seccomp-profile")
    for name in ("mount", "kexec_load", "init_module", "bpf", "unshare", "clone"):
        assert name in msg
    assert "which Docker's default profile forbids" in msg


def test_one_extra_call():
    doc = json.loads(profile(STRICT))
    doc["syscalls"].append({"names": ["mount"], "action": "SCMP_ACT_ALLOW"})
    assert seccomp.profile_problems(profile(doc)) == ["allows mount, which Docker's default profile forbids"]
    doc["syscalls"][-1] = {"name": "keyctl", "action": "SCMP_ACT_LOG"}  # old single-name form, LOG allows
    assert seccomp.profile_problems(profile(doc)) == ["allows keyctl, which Docker's default profile forbids"]
    doc["syscalls"][-1] = {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
    assert seccomp.profile_problems(profile(doc)) == []
    doc["syscalls"][-1] = {"names": ["mount"], "action": "SCMP_ACT_KILL"}
    assert seccomp.profile_problems(profile(doc)) == []


def test_clone_with_namespace_flags():
    doc = json.loads(profile(STRICT))
    doc["syscalls"][1] = {"names": ["clone"], "action": "SCMP_ACT_ALLOW"}  # any flags
    assert seccomp.profile_problems(profile(doc)) == ["allows clone, which Docker's default profile forbids"]


def test_capability_gated_rules():
    doc = json.loads(profile(STRICT))
    doc["syscalls"].append({"names": ["settimeofday"], "action": "SCMP_ACT_ALLOW",
                            "includes": {"caps": ["CAP_SYS_TIME"]}})
    assert seccomp.profile_problems(profile(doc)) == []
    got = seccomp.profile_problems(profile(doc), frozenset({"SYS_TIME"}))
    assert got == ["allows settimeofday, which Docker's default profile forbids"]
    # and through the rule: the added capability makes the gated call reachable
    out = create(hc(SecurityOpt=["seccomp=" + profile(doc)], CapAdd=["cap_sys_time"]))
    assert "seccomp-profile" in out.rules and "allows settimeofday" in out.msg
    # a default capability includes it always; an excluded one drops it
    doc["syscalls"][-1]["includes"] = {"caps": ["CAP_CHOWN"]}
    assert seccomp.profile_problems(profile(doc))
    doc["syscalls"][-1]["includes"] = {}
    doc["syscalls"][-1]["excludes"] = {"caps": ["CAP_CHOWN"]}
    assert seccomp.profile_problems(profile(doc)) == []
    doc["syscalls"][-1]["excludes"] = {"caps": ["CAP_SYS_TIME"]}
    assert seccomp.profile_problems(profile(doc))


def test_arch_filters():
    doc = json.loads(profile(STRICT))
    doc["syscalls"].append({"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}})
    assert seccomp.profile_problems(profile(doc)) == []
    doc["syscalls"][-1]["includes"] = {"arches": ["amd64"]}
    assert seccomp.profile_problems(profile(doc))
    doc["syscalls"][-1]["includes"] = {}
    doc["syscalls"][-1]["excludes"] = {"arches": ["amd64"]}
    assert seccomp.profile_problems(profile(doc)) == []


@pytest.mark.parametrize("text", [
    # Go's json.Unmarshal matches keys case-insensitively: so does the check
    '{"defaultAction":"SCMP_ACT_ERRNO","SYSCALLS":[{"names":["mount"],"action":"SCMP_ACT_ALLOW"}]}',
    '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"Names":["mount"],"ACTION":"SCMP_ACT_ALLOW"}]}',
    '{"defaultAction":"SCMP_ACT_ERRNO","Sy\u017fcalls":[{"names":["mount"],"action":"SCMP_ACT_ALLOW"}]}',
    # a repeated key: the last one wins in Go
    '{"defaultAction":"SCMP_ACT_ERRNO","DefaultAction":"SCMP_ACT_ALLOW"}',
    '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO","action":"SCMP_ACT_ALLOW"}]}',
])
def test_profile_read_as_go_reads_it(text):
    got = seccomp.profile_problems(text)
    assert got and "allows mount" in got[0], got


@pytest.mark.parametrize("text,what", [
    ("not json", "is not valid JSON"),
    ('{"defaultAction": NaN}', "is not valid JSON"),
    ('{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["mount"],"\u212aey":1}]}', "ambiguous"),
    ("[1]", "is not a JSON object"),
    ('{"defaultAction": "SCMP_ACT_BOGUS"}', "cannot be compiled: unknown action 'SCMP_ACT_BOGUS'"),
    ('{}', "cannot be compiled: unknown action ''"),
    ('{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[1]}', "each syscalls entry must be an object"),
    ('{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ALLOW","args":[5]}]}',
     "each args entry must be an object"),
    ('{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ALLOW",'
     '"args":[{"op":"SCMP_CMP_BOGUS"}]}]}', "unknown comparison"),
    ('{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ALLOW",'
     '"args":[{"index":"x","op":"SCMP_CMP_EQ"}]}]}', "cannot be compiled"),
])
def test_bad_profiles_are_denied_with_a_reason(text, what):
    got = seccomp.profile_problems(text)
    assert len(got) == 1 and what in got[0], got
    out = create(sec("seccomp=" + text))
    assert what in denied_by(out, "seccomp-profile")


def test_old_colon_form_profile():
    text = profile({"defaultAction": "SCMP_ACT_ALLOW"})
    assert "=" not in text
    denied_by(create(sec("seccomp:" + text)), "seccomp-profile")


def test_run_bpf_direct():
    import pyseccomp
    prog = seccomp.compile_profile({"defaultAction": "SCMP_ACT_ERRNO",
                                    "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]},
                                   seccomp.DEFAULT_CAPS)
    nr = pyseccomp.resolve_syscall(pyseccomp.system_arch(), "getpid")
    assert seccomp.run_bpf(prog, nr) & 0xFFFF0000 == 0x7FFF0000
    mount = pyseccomp.resolve_syscall(pyseccomp.system_arch(), "mount")
    assert seccomp.run_bpf(prog, mount) & 0xFFFF0000 == 0x00050000  # ERRNO
    # another architecture is killed by libseccomp's arch check, never allowed
    assert seccomp.run_bpf(prog, nr, arch=0x40000003) & 0xFFFF0000 not in seccomp.ACTIONS_ALLOWING


# ---- AppArmor ----

@pytest.mark.parametrize("opt", ["apparmor=unconfined", "apparmor:unconfined", "APPARMOR=Unconfined"])
def test_apparmor_unconfined(opt):
    assert f"--security-opt {opt}" in denied_by(create(sec(opt)), "apparmor-unconfined")


def test_apparmor_benign_and_service():
    allowed(create(sec("apparmor=docker-default")))
    body = {"TaskTemplate": {"ContainerSpec": {"Image": "x", "Privileges": {"AppArmor": {"Mode": "disabled"}}}}}
    denied_by(decide("POST", "/services/create", body), "apparmor-unconfined")
    body = {"TaskTemplate": {"ContainerSpec": {"Image": "x", "Privileges": {"AppArmor": {"Mode": "default"}}}}}
    allowed(decide("POST", "/services/create", body))


# ---- SELinux ----

@pytest.mark.parametrize("opt", ["label=disable", "label:disable", "label=DISABLE", "label=type:spc_t",
                                 "label:type:unconfined_t", "label=disable ", "disable"])
def test_selinux_disabled(opt):
    assert f"--security-opt {opt}" in denied_by(create(sec(opt)), "selinux-disabled")


@pytest.mark.parametrize("opt", ["label=level:s0:c100,c200", "label=type:container_t", "label=user:system_u"])
def test_selinux_benign(opt):
    allowed(create(sec(opt)))


def test_selinux_service():
    body = {"TaskTemplate": {"ContainerSpec": {"Image": "x", "Privileges": {"SELinuxContext": {"Disable": True}}}}}
    assert "SELinuxContext.Disable" in denied_by(decide("POST", "/services/create", body), "selinux-disabled")
    body = {"TaskTemplate": {"ContainerSpec": {"Image": "x", "Privileges": {"SELinuxContext": {"Disable": False}}}}}
    allowed(decide("POST", "/services/create", body))


# ---- writable /proc and /sys ----

def test_systempaths_unconfined():
    assert "systempaths=unconfined" in denied_by(create(sec("systempaths=unconfined")), "writable-proc-sys")


def test_masked_paths():
    msg = denied_by(create(hc(MaskedPaths=[])), "writable-proc-sys")
    assert "MaskedPaths without /proc/asound" in msg and "/sys/firmware" in msg
    msg = denied_by(create(hc(MaskedPaths=[p for p in DEFAULT_MASKED if p != "/proc/kcore"])), "writable-proc-sys")
    assert "MaskedPaths without /proc/kcore" in msg and "/proc/keys" not in msg
    allowed(create(hc(MaskedPaths=list(DEFAULT_MASKED))))
    allowed(create(hc(MaskedPaths=list(DEFAULT_MASKED) + ["/proc/extra"])))
    allowed(create(hc(MaskedPaths=None)))
    denied_by(create({"Image": "x", "Cmd": ["true"], "MaskedPaths": ["/proc/kcore"]}), "writable-proc-sys")


def test_readonly_paths():
    msg = denied_by(create(hc(ReadonlyPaths=["/proc/bus"])), "writable-proc-sys")
    assert "ReadonlyPaths without /proc/fs, /proc/irq, /proc/sys, /proc/sysrq-trigger" in msg
    allowed(create(hc(ReadonlyPaths=list(DEFAULT_READONLY))))


@pytest.mark.parametrize("mounts", [
    {"Tmpfs": {"/proc/sys": ""}},
    {"Tmpfs": {"/sys": "rw"}},
    {"Mounts": [{"Type": "tmpfs", "Target": "/proc"}]},
    {"Mounts": [{"Type": "bind", "Source": "/srv/x", "Target": "//sys/./kernel/"}]},
    {"Binds": ["/srv/x:/proc/sysrq-trigger:ro"]},
    {"Binds": ["vol:/sys/fs/cgroup"]},
])
def test_mounts_onto_proc_or_sys(mounts):
    msg = denied_by(create(hc(**mounts)), "writable-proc-sys")
    assert "mount onto" in msg


def test_volumes_onto_proc():
    denied_by(create({"Image": "x", "Cmd": ["true"], "Volumes": {"/proc/sys": {}}}), "writable-proc-sys")


@pytest.mark.parametrize("target", ["/procx", "/system", "/data/proc", "/srv/sys"])
def test_mounts_near_proc_or_sys_are_fine(target):
    assert create_problems("writable-proc-sys", hc(Tmpfs={target: ""})) == []


# ---- swarm services carry their own seccomp profile and SELinux type ----

def service(priv):
    return {"TaskTemplate": {"ContainerSpec": {"Image": "x", "Privileges": priv}}}


def test_service_custom_seccomp_profile_is_checked():
    import base64
    loose = base64.b64encode(profile({"defaultAction": "SCMP_ACT_ALLOW"}).encode()).decode()
    msg = denied_by(decide("POST", "/services/create", service({"Seccomp": {"Mode": "custom", "Profile": loose}})),
                    "seccomp-profile")
    assert "allows mount" in msg
    strict = base64.b64encode(profile(STRICT).encode()).decode()
    allowed(decide("POST", "/services/create", service({"Seccomp": {"Mode": "custom", "Profile": strict}})))
    out = decide("POST", "/services/s/update", service({"Seccomp": {"Mode": "custom", "Profile": "!!notb64"}}))
    assert "base64" in denied_by(out, "malformed-request")


@pytest.mark.parametrize("t", ["spc_t", "unconfined_t"])
def test_service_unconfined_selinux_type(t):
    out = decide("POST", "/services/create", service({"SELinuxContext": {"Type": t}}))
    assert f"label=type:{t}" in denied_by(out, "selinux-disabled")
    allowed(decide("POST", "/services/create", service({"SELinuxContext": {"Type": "container_t", "Level": "s0"}})))
