"""authz.existing: an existing container's effective configuration (docker inspect) judged by
the create rules at start, restart, exec, attach, unpause and update; levels respected; one
memoised lookup; failed lookups deny; what is not judged is not looked up."""
from __future__ import annotations

import copy
import json

import pytest

from authz import existing
from authz import policy as policies
from authz.context import HostFacts
from authz.engine import Engine
from authz.existing import ARCHIVE_ACTIONS, JUDGED_ACTIONS, SKIPPED, WHY, spec_from_inspect
from authz.rules import all_rules

from .helpers import FakeContext, allowed, decide, default_policy, denied_by

MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def inspect(name="web", *, hc=None, config=None, mounts=None, cid="3f2a1b4c5d6e" + "0" * 52):
    """What dockerd 20.10 reports for `docker create --name web busybox true` (cgroup v1 host),
    with the given HostConfig/Config fields changed."""
    info = {
        "Id": cid, "Name": "/" + name, "Image": "sha256:" + "ab" * 32,
        "Config": {"Hostname": cid[:12], "User": "", "AttachStdin": False, "AttachStdout": True,
                   "AttachStderr": True, "Tty": False, "OpenStdin": False, "Env": ["PATH=/bin"],
                   "Cmd": ["true"], "Image": "busybox", "Volumes": None, "Entrypoint": None,
                   "Labels": {}},
        "HostConfig": {"Binds": None, "NetworkMode": "default", "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                       "AutoRemove": False, "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
                       "CgroupnsMode": "host", "IpcMode": "private", "PidMode": "", "UTSMode": "",
                       "UsernsMode": "", "Privileged": False, "SecurityOpt": None, "Tmpfs": None,
                       "Runtime": "runc", "Devices": [], "DeviceCgroupRules": None, "KernelMemory": 0,
                       "Mounts": None, "MaskedPaths": list(MASKED), "ReadonlyPaths": list(READONLY)},
        "Mounts": [],
    }
    info["HostConfig"].update(hc or {})
    info["Config"].update(config or {})
    if mounts is not None:
        info["Mounts"] = mounts
    return info


def bind(src, dst):
    return {"Type": "bind", "Source": src, "Destination": dst, "Mode": "", "RW": True, "Propagation": "rprivate"}


VIOLATING = inspect("bad", hc={"PidMode": "host", "CapAdd": ["CAP_SYS_ADMIN"], "Binds": ["/etc:/x"],
                               "SecurityOpt": ["seccomp=unconfined", "label=disable"]},
                    mounts=[bind("/etc", "/x")])
BENIGN = inspect("good")

URIS = {
    "container.start": ("POST", "/v1.41/containers/{}/start", None),
    "container.restart": ("POST", "/v1.41/containers/{}/restart", None),
    "exec.create": ("POST", "/v1.41/containers/{}/exec", {"Cmd": ["ps"], "AttachStdout": True}),
    "container.attach": ("POST", "/v1.41/containers/{}/attach?stream=1&stdout=1", None),
    "container.unpause": ("POST", "/v1.41/containers/{}/unpause", None),
    "container.update": ("POST", "/v1.41/containers/{}/update", {"Memory": 67108864}),
    "container.archive_put": ("PUT", "/v1.41/containers/{}/archive?path=/x", None),
    "container.archive_get": ("GET", "/v1.41/containers/{}/archive?path=/x", None),
    "container.archive_head": ("HEAD", "/v1.41/containers/{}/archive?path=/x", None),
    "container.copy": ("POST", "/v1.23/containers/{}/copy", {"Resource": "/x"}),
}
RUNNING = sorted(JUDGED_ACTIONS - ARCHIVE_ACTIONS)  # every create rule applies


def on(action, name, **ctx_kw):
    """The action on container `name`; a cgroup v1 host unless told (as the fixtures are)."""
    method, uri, body = URIS[action]
    ctx_kw.setdefault("cgroup_v2", False)
    return decide(method, uri.format(name), body, **ctx_kw)


def test_every_judged_action_has_a_case():
    assert set(URIS) == JUDGED_ACTIONS


@pytest.mark.parametrize("action", RUNNING)
def test_violating_existing_container_is_refused_with_rule_and_why(action):
    out = on(action, "bad", containers={"bad": VIOLATING}, cgroup_v2=False)
    for rid in ("host-namespace", "dangerous-capability", "seccomp-unconfined", "sensitive-mount",
                "selinux-disabled"):
        denied_by(out, rid)
    assert "--pid host in existing container bad (3f2a1b4c5d6e)" in out.msg
    assert WHY in out.msg
    assert "Binds /etc:/x" not in out.msg and "bind /etc:/x (sensitive: /etc)" in out.msg
    assert "docker rm bad" in out.msg
    assert out.record["decision"] == "deny"


@pytest.mark.parametrize("action", sorted(JUDGED_ACTIONS))
def test_benign_twin_is_allowed(action):
    allowed(on(action, "good", containers={"good": BENIGN}))


@pytest.mark.parametrize("uri", ["/containers/bad/stop", "/containers/bad/kill", "/containers/bad/pause",
                                 "/containers/bad/wait"])
def test_taking_away_is_allowed_and_not_looked_up(uri):
    out = decide("POST", uri, containers={"bad": VIOLATING}, cgroup_v2=False)
    allowed(out)
    assert ("container", "bad") not in out.ctx.calls
    out = decide("DELETE", "/containers/bad", containers={"bad": VIOLATING}, cgroup_v2=False)
    allowed(out)
    assert out.ctx.calls == []


def test_websocket_attach_is_judged_too():
    out = decide("GET", "/v1.41/containers/bad/attach/ws?stream=1", containers={"bad": VIOLATING}, cgroup_v2=False)
    denied_by(out, "host-namespace")


def test_exec_into_a_privileged_container_names_the_container_not_the_exec():
    priv = inspect("p", hc={"Privileged": True, "SecurityOpt": ["label=disable"], "MaskedPaths": None,
                            "ReadonlyPaths": None})
    msg = denied_by(on("exec.create", "p", containers={"p": priv}), "privileged")
    assert "--privileged in existing container p" in msg and "privileged exec" not in msg


class CountingDaemon:
    """A DaemonClient stand-in that counts inspects."""

    def __init__(self, containers):
        self.containers = containers
        self.inspects = 0

    def container(self, ref):
        self.inspects += 1
        return self.containers.get(ref)

    def socket_paths(self):
        return frozenset()

    def root_paths(self):
        return frozenset({"/var/lib/docker"})

    def daemon_dirs(self):
        return frozenset({"/var/run/docker"})

    def docker_root(self):
        return "/var/lib/docker"


class V1Host(HostFacts):
    def cgroup_v2(self):
        return False


def test_one_inspect_per_request_shared_with_other_rules():
    """restart: restart-autoremove and the existing-container stage ask about the same
    container; the real RequestContext memoises, so dockerd is asked once."""
    import io
    from authz.audit import AuditLog
    from authz.context import RequestContext
    from .helpers import envelope
    pol = default_policy()
    daemon = CountingDaemon({"good": BENIGN, "bad": VIOLATING})
    e = Engine(pol, audit=AuditLog(io.StringIO()),
               context_factory=lambda: RequestContext(pol.lists, daemon, V1Host()))
    assert e.request(envelope("POST", "/containers/good/restart")).allow
    assert daemon.inspects == 1
    assert not e.request(envelope("POST", "/containers/bad/restart")).allow
    assert daemon.inspects == 2
    assert e.request(envelope("POST", "/containers/bad/stop")).allow
    assert daemon.inspects == 2


def test_benign_container_costs_one_lookup_and_nothing_else():
    out = on("container.start", "good", containers={"good": BENIGN})
    assert out.ctx.calls == [("container", "good")]


def test_unknown_container_is_left_to_dockerd():
    allowed(on("container.start", "nosuch"))


def test_failed_lookup_denies_naming_the_rules_left_unchecked():
    out = on("container.start", "x", fail={"container"})
    msg = denied_by(out, existing.LOOKUP_FAILED)
    assert "could not look up" in msg and "privileged" in msg and "sensitive-mount" in msg


def test_failed_lookup_with_every_judging_rule_at_audit_is_audited(tmp_path):
    p = tmp_path / "p.toml"
    lines = [f'{r.id} = "audit"' for r, _ in default_policy().by_action["container.create"]
             if r.id not in SKIPPED]
    p.write_text("[rules]\n" + "\n".join(lines) + "\n")
    out = on("container.start", "x", fail={"container"}, policy=policies.load(p))
    allowed(out)
    assert out.record["decision"] == "audit" and out.record["rule"] == [existing.LOOKUP_FAILED]


def test_levels_are_respected(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[rules]\nhost-namespace = "audit"\ndangerous-capability = "off"\n'
                 'seccomp-unconfined = "off"\nsensitive-mount = "off"\nselinux-disabled = "off"\n')
    pol = policies.load(p)
    out = on("container.start", "bad", containers={"bad": VIOLATING}, policy=pol)
    allowed(out)
    assert out.record["decision"] == "audit" and out.record["rule"] == ["host-namespace"]
    assert WHY in out.record["msg"]


def test_every_rule_off_means_no_lookup(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text("[rules]\n" + "\n".join(f'{r.id} = "off"' for r, _ in
                                         default_policy().by_action["container.create"]) + "\n")
    out = on("container.start", "bad", containers={"bad": VIOLATING}, policy=policies.load(p))
    allowed(out)
    assert out.ctx.calls == []


def test_rules_for_existing_are_the_create_rules_minus_the_documented_skips():
    pol = default_policy()
    got = {r.id for r, _ in existing.rules_for_existing(pol)}
    create_rules = {r.id for r in all_rules().values() if "container.create" in r.actions}
    on = {rid for rid in create_rules if pol.level(rid) != "off"}  # the cis profile's are off here
    assert got == on - set(SKIPPED)
    assert set(SKIPPED) - {"runtime"} <= create_rules  # a skip names a real create rule
    for must in ("privileged", "host-namespace", "dangerous-capability", "seccomp-unconfined",
                 "seccomp-profile", "apparmor-unconfined", "selinux-disabled", "writable-proc-sys",
                 "sensitive-mount", "sensitive-device", "device-cgroup-rule", "kernel-memory",
                 "hook-spec", "health-labels"):
        assert must in got


def test_skipped_rules_do_not_refuse_and_do_not_look_up_the_image():
    shell = inspect("sh", config={"Cmd": ["sh"], "AttachStdin": True, "AttachStdout": False,
                                  "AttachStderr": False})
    out = on("container.start", "sh", containers={"sh": shell})
    allowed(out)
    assert not [c for c in out.ctx.calls if c[0] == "image_config"]


# ---- what the effective configuration holds ----

def test_bind_source_swapped_for_a_symlink_is_judged_where_it_points_now():
    c = inspect("sw", hc={"Binds": ["/tmp/t/x:/x"]}, mounts=[bind("/tmp/t/x", "/x")])
    allowed(on("container.start", "sw", containers={"sw": c}))
    out = on("container.start", "sw", containers={"sw": c}, realpaths={"/tmp/t/x": "/etc"})
    msg = denied_by(out, "sensitive-mount")
    assert "bind /tmp/t/x:/x (sensitive: /etc)" in msg
    assert "bind source /tmp/t/x now resolves to /etc" in msg


def test_volumes_from_binds_are_in_the_effective_mounts():
    c = inspect("vf", hc={"VolumesFrom": ["bad"]}, mounts=[bind("/etc", "/x")])
    out = on("container.start", "vf", containers={"vf": c})
    denied_by(out, "sensitive-mount")
    assert ("container", "bad") not in out.ctx.calls  # the mounts are its own now


def test_volume_mounted_with_bind_options_is_looked_up():
    vol = {"Type": "volume", "Name": "a" * 64, "Source": "/var/lib/docker/volumes/x/_data",
           "Destination": "/anon", "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}
    c = inspect("v", mounts=[vol])
    out = on("container.start", "v", containers={"v": c},
             volumes={"a" * 64: {"Driver": "local", "Options": {"o": "bind", "type": "none", "device": "/etc"}}})
    msg = denied_by(out, "sensitive-mount")
    assert "volume " + "a" * 64 in msg
    # a plain volume: its _data under Docker's root is not taken for a bind of Docker's root
    allowed(on("container.start", "v", containers={"v": c}, volumes={"a" * 64: {"Driver": "local"}}))


def test_labels_as_dockerd_stores_them_merged_with_the_image():
    c = inspect("h", config={"Labels": {"dockguard.health.interval": "soon"}})
    denied_by(on("container.start", "h", containers={"h": c}), "health-labels")


def test_hook_spec_label_is_checked():
    c = inspect("k", config={"Labels": {"dockguard.hook-spec": "relative/spec.json"}})
    out = on("container.start", "k", containers={"k": c},
             image_configs={"busybox": {"Labels": {"dockguard.hook-spec": "/other.json"}}})
    msg = denied_by(out, "hook-spec")
    assert "/other.json" not in msg


def test_the_image_is_not_looked_up_again():
    """dockerd merged the image's labels into Config.Labels at create; the tag may since name
    another image, whose labels the container does not have."""
    c = inspect("i")
    out = on("container.start", "i", containers={"i": c},
             image_configs={"busybox": {"Labels": {"dockguard.hook-spec": "relative.json",
                                                   "dockguard.health.interval": "soon"}}})
    allowed(out)
    assert not [x for x in out.ctx.calls if x[0] == "image_config"]


@pytest.mark.parametrize("hc,rule", [
    ({"Privileged": True}, "privileged"),
    ({"NetworkMode": "host"}, "host-namespace"),
    ({"IpcMode": "host"}, "host-namespace"),
    ({"UTSMode": "host"}, "host-namespace"),
    ({"UsernsMode": "host"}, "host-namespace"),
    ({"CapAdd": ["ALL"]}, "dangerous-capability"),
    ({"SecurityOpt": ["apparmor=unconfined"]}, "apparmor-unconfined"),
    ({"SecurityOpt": ["systempaths=unconfined"], "MaskedPaths": [], "ReadonlyPaths": []}, "writable-proc-sys"),
    ({"Devices": [{"PathOnHost": "/dev/mem", "PathInContainer": "/dev/mem", "CgroupPermissions": "rwm"}]},
     "sensitive-device"),
    ({"DeviceCgroupRules": ["a"]}, "device-cgroup-rule"),
    ({"KernelMemory": 67108864}, "kernel-memory"),
    ({"Tmpfs": {"/proc/sys": ""}}, "writable-proc-sys"),
])
def test_each_recorded_setting_is_judged(hc, rule):
    denied_by(on("container.start", "c", containers={"c": inspect("c", hc=hc)}), rule)


def test_joining_a_container_now_in_the_hosts_namespace():
    c = inspect("j", hc={"NetworkMode": "container:" + "9" * 64})
    host = inspect("n", hc={"NetworkMode": "host"})
    denied_by(on("container.start", "j", containers={"j": c, "9" * 64: host}), "host-namespace")


def test_cgroupns_host_counts_only_where_it_is_not_dockerd_default():
    c = inspect("cg")  # CgroupnsMode host, as dockerd records every container on cgroup v1
    allowed(on("container.start", "cg", containers={"cg": c}, cgroup_v2=False))
    denied_by(on("container.start", "cg", containers={"cg": c}, cgroup_v2=True), "host-namespace")
    c2 = inspect("cg2", hc={"CgroupnsMode": "private"})
    allowed(on("container.start", "cg2", containers={"cg2": c2}, cgroup_v2=True))


def test_docker_26_inspect_with_null_kernel_memory():
    c = inspect("n", hc={"KernelMemory": None, "NetworkMode": "bridge",
                         "MaskedPaths": MASKED + ["/sys/devices/virtual/powercap"]})
    allowed(on("container.start", "n", containers={"n": c}))


def test_unreadable_inspect_data_denies():
    c = inspect("u", hc={"Privileged": "yes"})
    msg = denied_by(on("container.start", "u", containers={"u": c}), existing.LOOKUP_FAILED)
    assert "could not read container u's configuration" in msg


def test_spec_from_inspect_is_the_create_spec():
    s = spec_from_inspect(VIOLATING, cgroup_v2=False)
    assert s.namespaces == {"pid": ["host"], "ipc": ["private"], "net": ["default"]}
    assert s.cap_add == ["CAP_SYS_ADMIN"] and "seccomp=unconfined" in s.security_opt
    assert [(m.kind, m.source, m.target) for m in s.mounts] == [("bind", "/etc", "/x")]  # once, not twice
    assert s.name == "bad" and s.cmd == ["true"]


# ---- update: disarming the restart policy is the fix, and allowed ----

def test_update_that_turns_the_restart_policy_off_is_allowed_on_a_violating_container():
    out = decide("POST", "/containers/bad/update", {"RestartPolicy": {"Name": "no"}},
                 containers={"bad": VIOLATING}, cgroup_v2=False)
    allowed(out)
    assert out.ctx.calls == []
    out = decide("POST", "/containers/bad/update", {"restartpolicy": {"name": "no"}, "Memory": 1 << 26},
                 containers={"bad": VIOLATING}, cgroup_v2=False)
    allowed(out)


@pytest.mark.parametrize("body", [{"RestartPolicy": {"Name": "always"}}, {"RestartPolicy": {"Name": ""}},
                                  {"RestartPolicy": {"Name": "No"}}, {"CpuShares": 512}])
def test_other_updates_of_a_violating_container_are_refused(body):
    out = decide("POST", "/containers/bad/update", body, containers={"bad": VIOLATING}, cgroup_v2=False)
    denied_by(out, "host-namespace")


def test_old_api_start_body_and_existing_config_both_judged():
    out = decide("POST", "/v1.22/containers/bad/start", {"Privileged": True},
                 headers={"Content-Type": "application/json", "Content-Length": "20"},
                 containers={"bad": VIOLATING}, cgroup_v2=False)
    denied_by(out, "privileged")
    denied_by(out, "host-namespace")


def test_engine_against_a_reloaded_policy_uses_its_own_levels(tmp_path):
    # the judged rules are computed per engine (a reload builds a new engine)
    p = tmp_path / "p.toml"
    p.write_text('[rules]\nhost-namespace = "off"\n')
    pol = policies.load(p)
    ctx = FakeContext(containers={"x": inspect("x", hc={"PidMode": "host"})})
    from .helpers import envelope
    import io
    from authz.audit import AuditLog
    e = Engine(pol, context_factory=lambda: ctx, audit=AuditLog(io.StringIO()))
    assert e.request(envelope("POST", "/containers/x/start")).allow
    e2 = Engine(default_policy(), context_factory=lambda: ctx, audit=AuditLog(io.StringIO()))
    assert not e2.request(envelope("POST", "/containers/x/start")).allow


def test_inspect_of_the_example_is_json_serialisable():
    # the fixtures above are what the SDK returns: plain JSON data
    json.dumps(copy.deepcopy(VIOLATING))


# ---- copies: dockerd mounts the container's binds to copy, so only the mounts are judged ----

@pytest.mark.parametrize("method,uri", [
    ("PUT", "/v1.41/containers/{}/archive?path=/x"),
    ("GET", "/v1.41/containers/{}/archive?path=/x/shadow"),
    ("HEAD", "/v1.41/containers/{}/archive?path=/x/shadow"),
    ("POST", "/v1.23/containers/{}/copy"),
])
def test_copies_into_and_out_of_a_container_binding_etc_are_refused(method, uri):
    body = {"Resource": "/x/shadow"} if uri.endswith("/copy") else None
    out = decide(method, uri.format("bad"), body, containers={"bad": VIOLATING}, cgroup_v2=False)
    msg = denied_by(out, "sensitive-mount")
    assert out.rules == ("sensitive-mount",), out.rules  # a copy does not care about --pid host
    assert "existing container bad" in msg
    pid_only = inspect("p", hc={"PidMode": "host", "Privileged": True})
    out = decide(method, uri.format("p"), body, containers={"p": pid_only}, cgroup_v2=False)
    assert out.allow, out.msg


def test_a_copy_through_a_swapped_bind_source_is_refused():
    c = inspect("sw", mounts=[bind("/tmp/t/x", "/x")])
    out = decide("PUT", "/containers/sw/archive?path=/x", containers={"sw": c}, realpaths={"/tmp/t/x": "/etc"})
    assert "bind source /tmp/t/x now resolves to /etc" in denied_by(out, "sensitive-mount")
