"""The runtime's judge without Docker: OCI config -> the plugin's Spec -> the plugin's rules,
bind sources pinned and named by what they are, mountinfo read right, the policy cached."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from authz import spec as authz_spec
from hookbin import hostpath, judge, rtpolicy

from . import ociconfigs
from .ociconfigs import ID

DENY_ALL = {r: "deny" for r in judge.RUNTIME_RULES if not r.startswith("cis-")}  # cis: test_judge_cis.py


class Lists:
    sensitive_paths = frozenset({"/", "/etc", "/proc", "/sys", "/dev", "/usr", "/var", "/run", "/boot"})
    sensitive_devices = frozenset({"/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg"})
    dangerous_capabilities = frozenset({"SYS_ADMIN", "SYS_MODULE", "NET_ADMIN", "SYS_PTRACE"})
    allowed_paths = frozenset()


class Policy:
    def __init__(self, levels=None):
        self.levels = dict(levels or DENY_ALL)
        self.lists = Lists()
        self.source = "test"


def judged(change=None, levels=None, root=ociconfigs.ROOT, facts=None):
    """(denied rule ids, deny texts, audit ids) for BENIGN changed by `change` (no pinning)."""
    c = ociconfigs.config(change, root=root)
    spec = judge.spec_from_config(c, facts or {})
    ctx = judge.StaticContext(Lists(), root, frozenset(), judge.device_nodes(c))
    denies, audits = judge.judge(spec, ctx, dict(levels or DENY_ALL))
    return [r for r, _ in denies], " ".join(t for _, t in denies), [r for r, _ in audits]


# --- the Spec shape stays the plugin's ---------------------------------------------------

def test_runtime_spec_has_exactly_the_plugins_fields():
    assert set(judge.SPEC_FIELDS) == {f.name for f in dataclasses.fields(authz_spec.Spec)}
    assert set(judge.Mount.__slots__) == {f.name for f in dataclasses.fields(authz_spec.Mount)}
    assert set(judge.Device.__slots__) == {f.name for f in dataclasses.fields(authz_spec.Device)}


def test_every_runtime_rule_exists_and_judges_container_creates():
    rules = {r.id: r for r in judge.rules()}
    assert set(rules) == set(judge.RUNTIME_RULES)
    assert all("container.create" in r.actions for r in rules.values())


# --- the benign config and each violation ------------------------------------------------

def test_dockerd_default_config_is_allowed():
    assert judged() == ([], "", [])


def _drop_ns(kind):
    def change(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != kind]
    return change


@pytest.mark.parametrize("kind, flag", [("pid", "--pid host"), ("ipc", "--ipc host"),
                                        ("uts", "--uts host"), ("network", "--net host")])
def test_a_missing_namespace_is_the_hosts(kind, flag):
    ids, text, _ = judged(_drop_ns(kind))
    assert ids == ["host-namespace"] and flag in text and "Safely:" in text


def test_a_namespace_path_that_is_ours_is_the_hosts():
    def change(c):
        for n in c["linux"]["namespaces"]:
            if n["type"] == "network":
                n["path"] = "/proc/self/ns/net"
    c = ociconfigs.config(change)
    assert judge.host_namespaces(c) == {"network"}
    ids, text, _ = judged(change, facts={"host_ns": judge.host_namespaces(c)})
    assert ids == ["host-namespace"] and "--net host" in text


@pytest.mark.skipif(os.geteuid() != 0, reason="unshare needs root")
def test_another_processes_private_namespace_is_not_the_hosts():
    p = subprocess.Popen(["unshare", "--net", "sleep", "30"])
    try:
        import time
        for _ in range(100):
            if os.readlink(f"/proc/{p.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            time.sleep(0.05)
        c = ociconfigs.config(lambda c: c["linux"]["namespaces"][1].update(path=f"/proc/{p.pid}/ns/net"))
        assert judge.host_namespaces(c) == set()
    finally:
        p.kill()
        p.wait()


def test_cgroup_namespace_judged_where_docker_makes_it_private():
    c = _drop_ns("cgroup")
    assert judged(c)[0] == []  # cgroup v1: Docker shares it by default
    ids, text, _ = judged(c, facts={"cgroup2": True})
    assert ids == ["host-namespace"] and "--cgroupns host" in text
    assert judged(lambda c: c["linux"]["namespaces"].append({"type": "cgroup"}), facts={"cgroup2": True})[0] == []


def test_volume_content_paths():
    r = "/var/lib/docker"
    assert judge.volume_name(f"{r}/volumes/v/_data", r) == "v"
    assert judge.volume_name(f"{r}/volumes/v/_data/sub", r) == "v"
    assert judge.volume_name(f"{r}/volumes/v", r) is None
    assert judge.volume_name(f"{r}/volumes/metadata.db", r) is None
    pid = "a" * 64
    assert judge.volume_name(f"{r}/plugins/{pid}/propagated-mount/x", r) == f"of plugin {pid[:12]}"
    assert judge.volume_top(f"{r}/plugins/{pid}/propagated-mount/x", r) == f"{r}/plugins/{pid}/propagated-mount"
    assert judge.volume_name(f"{r}/plugins/{pid}/rootfs/etc", r) is None


def test_dangerous_capability_in_any_set():
    for cap_set in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        ids, text, _ = judged(lambda c: c["process"]["capabilities"].setdefault(cap_set, []).append("CAP_SYS_ADMIN"))
        assert ids == ["dangerous-capability"] and "CAP_SYS_ADMIN" in text, cap_set


def test_privileged_equivalent():
    def change(c):
        for s in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][s].append("CAP_SYS_ADMIN")
        c["linux"]["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    ids, text, _ = judged(change)
    assert {"privileged", "dangerous-capability", "device-cgroup-rule"} <= set(ids)
    assert "--privileged" in text


@pytest.mark.parametrize("seccomp", [None, {"defaultAction": "SCMP_ACT_ALLOW"},
                                     {"defaultAction": "SCMP_ACT_LOG", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW"}]}])
def test_seccomp_absent_or_allowing_everything(seccomp):
    def change(c):
        if seccomp is None:
            del c["linux"]["seccomp"]
        else:
            c["linux"]["seccomp"] = seccomp
    ids, text, _ = judged(change)
    assert ids == ["seccomp-unconfined"] and "seccomp=unconfined" in text


def test_an_allowing_default_with_refusals_is_a_filter():
    ids, _, _ = judged(lambda c: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}))
    assert ids == []


def test_apparmor_and_selinux():
    ids, _, _ = judged(lambda c: c["process"].update(apparmorProfile="unconfined"))
    assert ids == ["apparmor-unconfined"]
    assert judged(lambda c: c["process"].update(apparmorProfile="docker-default"))[0] == []
    assert judged(facts={"apparmor": True})[0] == []  # no profile: dockerd may just lack apparmor_parser
    ids, text, _ = judged(lambda c: c["process"].update(selinuxLabel="system_u:system_r:spc_t:s0"))
    assert ids == ["selinux-disabled"] and "spc_t" in text
    assert judged(lambda c: c["process"].update(selinuxLabel="system_u:system_r:container_t:s0:c1,c2"))[0] == []
    # no label: dockerd labels only with --selinux-enabled, so absence proves nothing
    assert judged(facts={"selinux": True})[0] == []


def test_masked_and_readonly_paths_removed():
    ids, text, _ = judged(lambda c: c["linux"]["maskedPaths"].remove("/proc/kcore"))
    assert ids == ["writable-proc-sys"] and "/proc/kcore" in text
    ids, text, _ = judged(lambda c: c["linux"].pop("readonlyPaths"))
    assert ids == ["writable-proc-sys"] and "/proc/sys" in text
    # dockerd 26 masks more: a superset is fine
    assert judged(lambda c: c["linux"]["maskedPaths"].append("/sys/devices/virtual/powercap"))[0] == []


def test_kernel_memory():
    ids, text, _ = judged(lambda c: c["linux"]["resources"]["memory"].update(kernel=10485760))
    assert ids == ["kernel-memory"] and "10485760" in text


def test_devices_by_number_whatever_their_name():
    def change(c):
        c["linux"]["devices"] = [{"path": "/dev/harmless", "type": "c", "major": 1, "minor": 1}]
        c["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 1, "access": "rwm"})
    ids, text, _ = judged(change)
    assert ids == ["sensitive-device"] and "memory device 1:1" in text  # the allow is not repeated
    ids, _, _ = judged(lambda c: c["linux"].update(devices=[{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}]))
    assert ids == ["sensitive-device"]
    ids, _, _ = judged(lambda c: c["linux"].update(devices=[{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]))
    assert ids == []


@pytest.mark.parametrize("entry, ok", [
    ({"allow": True, "type": "c", "major": 1, "minor": -1, "access": "rwm"}, False),
    ({"allow": True, "type": "b", "major": 8, "minor": 0, "access": "rw"}, False),
    ({"allow": True, "type": "a", "access": "rwm"}, False),
    ({"allow": True, "access": "rwm"}, False),
    ({"allow": True, "type": "c", "major": -1, "minor": -1, "access": "m"}, False),
    ({"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"}, True),
    ({"allow": False, "type": "a", "access": "rwm"}, True),
])
def test_device_cgroup_allows(entry, ok):
    ids, _, _ = judged(lambda c: c["linux"]["resources"]["devices"].append(entry))
    assert (ids == []) is ok, ids


@pytest.mark.parametrize("mount, rule", [
    ({"destination": "/x", "type": "proc", "source": "proc"}, "sensitive-mount"),
    ({"destination": "/x", "type": "sysfs", "source": "sysfs"}, "sensitive-mount"),
    ({"destination": "/x", "type": "devtmpfs", "source": "devtmpfs"}, "sensitive-mount"),
    ({"destination": "/x", "type": "ext4", "source": "/dev/vda"}, "sensitive-mount"),
    ({"destination": "/x", "type": "overlay", "source": "overlay", "options": ["lowerdir=/etc:/tmp/l"]}, "sensitive-mount"),
    ({"destination": "/proc/sys/kernel", "type": "tmpfs", "source": "tmpfs"}, "writable-proc-sys"),
])
def test_kernel_filesystems_and_devices_mounted_elsewhere(mount, rule):
    ids, _, _ = judged(lambda c: c["mounts"].append(mount))
    assert rule in ids


def test_docker_own_tmpfs_and_user_tmpfs_are_fine():
    assert judged(lambda c: c["mounts"].append({"destination": "/tt", "type": "tmpfs", "source": "tmpfs"}))[0] == []


def test_levels_audit_and_off():
    change = _drop_ns("pid")
    ids, _, audits = judged(change, levels={**DENY_ALL, "host-namespace": "audit"})
    assert ids == [] and audits == ["host-namespace"]
    assert judged(change, levels={**DENY_ALL, "host-namespace": "off"}) == ([], "", [])


def test_docker_managed_sources_by_exact_path():
    root = "/var/lib/docker"
    own = f"{root}/containers/{ID}"
    assert judge.docker_managed(f"{own}/hosts", "/etc/hosts", root, ID)
    assert judge.docker_managed(f"{own}/mounts/shm", "/dev/shm", root, ID)
    assert judge.docker_managed(f"{root}/containers/{'f' * 64}/mounts/shm", "/dev/shm", root, ID)
    assert judge.docker_managed(f"{root}/containers/{'f' * 64}/hosts", "/etc/hosts", root, ID)  # --net container:X
    assert not judge.docker_managed(f"{root}/containers/{'f' * 64}/config.v2.json", "/x", root, ID)
    assert not judge.docker_managed(f"{root}/containers/{'F' * 64}/hosts", "/etc/hosts", root, ID)
    assert not judge.docker_managed(f"{own}/config.v2.json", "/x", root, ID)
    assert not judge.docker_managed(f"{own}/mounts/../../../../etc", "/x", root, ID)
    assert not judge.docker_managed(f"{own}/hosts", "/etc/hosts", root, None)


# --- mountinfo (pure) ---------------------------------------------------------------------

MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /proc rw,nosuid shared:2 - proc proc rw
24 22 0:22 / /sys rw shared:3 - sysfs sysfs rw
30 22 254:0 /etc /var/lib/docker/volumes/vb/_data rw shared:1 - ext4 /dev/vda rw
31 22 0:21 / /var/lib/docker/volumes/vp/_data rw - proc proc rw
32 22 0:40 / /var/lib/docker/volumes/vo/_data rw - overlay overlay rw,lowerdir=/etc:/tmp/l,upperdir=/tmp/u,workdir=/tmp/w
33 22 0:41 / /var/lib/docker/volumes/vt/_data rw - tmpfs tmpfs rw
34 22 8:16 / /var/lib/docker/volumes/vd/_data rw - ext4 /dev/sdb rw
35 22 254:0 /srv/a\\040b /mnt/space rw - ext4 /dev/vda rw
"""


def test_parse_mountinfo_unescapes():
    t = hostpath.parse_mountinfo(MOUNTINFO)
    assert t[35].root == "/srv/a b" and t[30].point == "/var/lib/docker/volumes/vb/_data"
    assert (t[32].fstype, t[34].source) == ("overlay", "/dev/sdb")


@pytest.mark.parametrize("mid, path, want", [
    (30, "/var/lib/docker/volumes/vb/_data", ["/etc"]),
    (30, "/var/lib/docker/volumes/vb/_data/ssl", ["/etc/ssl"]),
    (31, "/var/lib/docker/volumes/vp/_data", ["/proc"]),
    (32, "/var/lib/docker/volumes/vo/_data", ["/etc", "/tmp/l", "/tmp/u", "/tmp/w"]),
    (33, "/var/lib/docker/volumes/vt/_data", []),
    (34, "/var/lib/docker/volumes/vd/_data", ["/dev/sdb"]),
    (35, "/mnt/space", ["/srv/a b"]),
])
def test_what_a_mount_is_on_the_host(mid, path, want):
    t = hostpath.parse_mountinfo(MOUNTINFO)
    assert hostpath.mount_host_paths(path, t[mid], t) == want


def test_translation_avoids_dockerds_own_mounts():
    """A bind of /etc/ssl made by dockerd (a volume subpath) shows /etc/ssl, not the path of
    the volume mount of /etc that also holds it."""
    t = hostpath.parse_mountinfo(MOUNTINFO + "40 22 254:0 /etc/ssl /var/lib/docker/tmp/safe-mount1 rw - ext4 /dev/vda rw\n")
    assert hostpath.mount_host_paths("/var/lib/docker/tmp/safe-mount1", t[40], t, volume=False,
                                     avoid_under="/var/lib/docker") == ["/etc/ssl"]
    assert hostpath.mount_host_paths("/var/lib/docker/tmp/safe-mount1", t[40], t, volume=False) == [
        "/var/lib/docker/volumes/vb/_data/ssl"]


def test_a_path_on_the_hosts_own_mount_is_itself():
    t = hostpath.parse_mountinfo(MOUNTINFO)
    assert hostpath.mount_host_paths("/tmp/x", t[22], t, volume=False) == []
    assert hostpath.mount_host_paths("/mnt/space/y", t[35], t, volume=False) == ["/srv/a b/y"]


# --- pinning, for real (no Docker): a swapped symlink is judged as what it points to ------

def _bind(c, src, dest="/x"):
    c["mounts"].append({"destination": dest, "type": "bind", "source": str(src), "options": ["rbind", "rprivate"]})


def test_pinned_sources_are_judged_as_what_they_resolve_to(tmp_path):
    root = tmp_path / "root"
    (root / "containers").mkdir(parents=True)
    plain = tmp_path / "plain"
    plain.mkdir()
    link = tmp_path / "link"
    link.symlink_to("/etc")
    pol = Policy()
    c = ociconfigs.config(lambda c: _bind(c, plain), root=root)
    pinned, denies, _ = judge.check_config(c, str(root), ID, pol)
    try:
        assert denies == [] and [p.path for p in pinned.values()] == [str(plain)]
    finally:
        for p in pinned.values():
            os.close(p.fd)
    c = ociconfigs.config(lambda c: _bind(c, link), root=root)
    pinned, denies, _ = judge.check_config(c, str(root), ID, pol)
    for p in pinned.values():
        os.close(p.fd)
    assert [r for r, _ in denies] == ["sensitive-mount"]
    assert f"bind {link} -> /etc:/x (sensitive: /etc)" in denies[0][1]


def test_a_source_that_does_not_exist_is_refused(tmp_path):
    (tmp_path / "containers").mkdir()
    c = ociconfigs.config(lambda c: _bind(c, tmp_path / "nope"), root=tmp_path)
    with pytest.raises(judge.Refused, match=f"^refused: bind source {tmp_path}/nope for /x does not exist .*Safely:"):
        judge.check_config(c, str(tmp_path), ID, Policy())


def test_docker_root_paths_of_other_containers_are_refused(tmp_path):
    other = tmp_path / "containers" / ("f" * 64)
    other.mkdir(parents=True)
    (other / "config.v2.json").write_text("{}")
    c = ociconfigs.config(lambda c: _bind(c, other / "config.v2.json"), root=tmp_path)
    pinned, denies, _ = judge.check_config(c, str(tmp_path), ID, Policy())
    for p in pinned.values():
        os.close(p.fd)
    assert "sensitive-mount" in [r for r, _ in denies] and f"(sensitive: {tmp_path})" in denies[0][1]


@pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")
def test_check_bundle_stages_pinned_sources_in_its_own_namespace(tmp_path):
    """In a child process (it leaves for a mount namespace of its own): config.json then names
    the staging path, and in that namespace the staging path is the very directory judged."""
    root = tmp_path / "root"
    (root / "containers").mkdir(parents=True)
    src = tmp_path / "data"
    src.mkdir()
    (src / "marker").write_text("here")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(ociconfigs.config(lambda c: _bind(c, src), root=root)))
    code = f"""
import json, os, sys
sys.path.insert(0, {str(Path(__file__).parents[2])!r})
from hookbin import judge
n = judge.check_bundle({str(bundle)!r}, {str(root)!r}, {ID!r}, None)
c = json.load(open({str(bundle / 'config.json')!r}))
staged = c["mounts"][-1]["source"]
print(json.dumps([n, staged, open(os.path.join(staged, "marker")).read(), os.readlink("/proc/self/ns/mnt")]))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    n, staged, marker, ns = json.loads(res.stdout)
    assert n == 1 and staged == f"{hostpath.STAGE_DIR}/{len(ociconfigs.BENIGN['mounts'])}" and marker == "here"
    assert ns != os.readlink("/proc/self/ns/mnt"), "the staging happened in a namespace of its own"
    assert not os.path.exists(os.path.join(staged, "marker")), "nothing staged in ours"


# --- the policy, cached ------------------------------------------------------------------

@pytest.fixture
def cache_dir(monkeypatch, tmp_path):
    d = Path("/run/dockguard-test-cache-" + tmp_path.name)
    monkeypatch.setattr(rtpolicy, "CACHE_DIR", str(d))
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def trusted_dir():
    """A directory root's alone from / down (policies are read only from such places)."""
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="dgj", dir="/var/lib"))
    os.chmod(d, 0o755)
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def test_policy_levels_from_the_file_and_cached(cache_dir, trusted_dir):
    pol_file = trusted_dir / "policy.toml"
    pol_file.write_text('[rules]\nhost-namespace = "audit"\n[lists]\nsensitive_paths = ["/srv/secret"]\n')
    pol = rtpolicy.load(str(pol_file), judge.RUNTIME_RULES)
    assert pol.level("host-namespace") == "audit" and pol.level("privileged") == "deny"
    assert "/srv/secret" in pol.lists.sensitive_paths and "/etc" in pol.lists.sensitive_paths
    cached = list(cache_dir.iterdir())
    assert len(cached) == 1 and (cached[0].stat().st_mode & 0o077) == 0
    # the cache is what is read next time: poison it (same key) and see it used
    doc = json.loads(cached[0].read_text())
    doc["levels"]["privileged"] = "off"
    cached[0].write_text(json.dumps(doc))
    assert rtpolicy.load(str(pol_file), judge.RUNTIME_RULES).level("privileged") == "off"
    # any change to the file is a new key: compiled again
    pol_file.write_text('[rules]\nhost-namespace = "off"\n')
    pol = rtpolicy.load(str(pol_file), judge.RUNTIME_RULES)
    assert pol.level("host-namespace") == "off" and pol.level("privileged") == "deny"


def test_audit_level_is_reported_and_allowed(cache_dir, trusted_dir, tmp_path):
    pol_file = trusted_dir / "policy.toml"
    pol_file.write_text('[rules]\nhost-namespace = "audit"\n')
    root = tmp_path / "root"
    (root / "containers").mkdir(parents=True)
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(ociconfigs.config(_drop_ns("pid"), root=root)))
    seen = []
    assert judge.check_bundle(str(bundle), str(root), ID, str(pol_file), audit=seen.append) == 0
    assert len(seen) == 1 and seen[0].startswith(f"audit (policy: {pol_file}): [host-namespace] --pid host")
    from hookbin import runtime
    assert "level=warning" in runtime.log_line("x", "text", level="warning")


def test_policy_cache_stays_small(cache_dir, trusted_dir):
    for i in range(rtpolicy.MAX_CACHED + 5):
        f = trusted_dir / f"p{i}.toml"
        f.write_text("")
        rtpolicy.load(str(f), judge.RUNTIME_RULES)
    assert len(list(cache_dir.iterdir())) <= rtpolicy.MAX_CACHED


def test_policy_that_cannot_be_used_fails_closed(cache_dir, trusted_dir, tmp_path):
    bad = trusted_dir / "bad.toml"
    bad.write_text("[rules\n")
    with pytest.raises(rtpolicy.PolicyError, match="not valid TOML"):
        rtpolicy.load(str(bad), judge.RUNTIME_RULES)
    unknown = trusted_dir / "unknown.toml"
    unknown.write_text('[rules]\nno-such-rule = "deny"\n')
    with pytest.raises(rtpolicy.PolicyError, match="unknown rule"):
        rtpolicy.load(str(unknown), judge.RUNTIME_RULES)
    with pytest.raises(rtpolicy.PolicyError):
        rtpolicy.load(str(trusted_dir / "missing.toml"), judge.RUNTIME_RULES)
    loose = tmp_path / "p.toml"  # under /tmp: anyone could have written it
    loose.write_text("")
    with pytest.raises(rtpolicy.PolicyError, match="writable by group or others"):
        rtpolicy.load(str(loose), judge.RUNTIME_RULES)


def test_check_bundle_refuses_when_the_policy_cannot_be_used(cache_dir, tmp_path):
    (tmp_path / "containers").mkdir()
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(ociconfigs.config(root=tmp_path)))
    with pytest.raises(judge.Refused, match="every container is refused while the policy cannot be used"):
        judge.check_bundle(str(bundle), str(tmp_path), ID, str(tmp_path / "missing.toml"))


# --- JSON without `json` (the create path's import cost) ----------------------------------

@pytest.mark.parametrize("doc", [ociconfigs.BENIGN, {"a": [1, 2.5, float("inf"), "é\u2028\x00", None, True, {"b": {}}]},
                                 [], "s", 0, {"dup": 1}])
def test_oci_json_is_json(doc):
    from hookbin import oci
    assert oci.dumps(doc) == json.dumps(doc, separators=(",", ":"))
    assert oci.loads(oci.dumps(doc)) == json.loads(json.dumps(doc))
    assert oci.loads(" \n" + json.dumps(doc, indent=2) + "\n") == json.loads(json.dumps(doc))


def test_oci_loads_takes_what_json_takes():
    from hookbin import oci
    assert str(oci.loads('{"a": NaN}')["a"]) == "nan"  # json.loads's own answer (fallback)


@pytest.mark.parametrize("text", ['{"a": 1} x', "{", "", b"\xff"])
def test_oci_loads_refuses_what_json_refuses(text):
    from hookbin import oci
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        oci.loads(text)


# --- every command that makes a container from a bundle is judged -------------------------

@pytest.mark.parametrize("cmd", ["create", "run", "restore"])
def test_front_sends_every_bundle_command_to_python(tmp_path, cmd):
    from hookbin import install
    fake = tmp_path / "fake-runc"
    fake.write_text('#!/bin/sh\necho ran > "$(dirname "$0")/ran"\n')
    fake.chmod(0o755)
    exe = install.install_runtime(str(tmp_path / "bin"), runc=str(fake), python="/nonexistent/python3",
                                  docker_root=str(tmp_path))
    res = subprocess.run([exe, "--root", "/r", cmd, "--bundle", str(tmp_path), ID], capture_output=True, text=True)
    assert res.returncode != 0 and "/nonexistent/python3" in res.stderr
    assert not (tmp_path / "ran").exists()
    res = subprocess.run([exe, "--root", "/r", "state", ID], capture_output=True, text=True)
    assert res.returncode == 0 and (tmp_path / "ran").exists()


def test_runtime_main_judges_run_too(tmp_path):
    from hookbin import runtime
    inv = runtime.parse_argv(["--root", "/r", "run", "-d", "--bundle", "/b", "--pid-file", "/p", ID])
    assert (inv.command, inv.bundle, inv.container_id) == ("run", "/b", ID)


def test_a_config_that_cannot_be_judged_is_refused_clearly(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "containers").mkdir(parents=True)
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(ociconfigs.config(lambda c: c.update(mounts="nonsense"), root=root)))
    with pytest.raises(judge.Refused, match=r"config.json cannot be judged: mounts must be a JSON array"):
        judge.check_bundle(str(bundle), str(root), ID, None)
    (bundle / "config.json").write_text(json.dumps(ociconfigs.config(
        lambda c: c["linux"]["resources"]["memory"].update(kernel="lots"), root=root)))
    assert judge.check_bundle(str(bundle), str(root), ID, None) == 0  # not an int: no limit set
    (bundle / "config.json").write_text(json.dumps(ociconfigs.config(
        lambda c: c["process"]["capabilities"].update(bounding="CAP_SYS_ADMIN"), root=root)))
    with pytest.raises(judge.Refused, match=r"process.capabilities.bounding must be a JSON array"):
        judge.check_bundle(str(bundle), str(root), ID, None)
    (bundle / "config.json").write_text(json.dumps(ociconfigs.config(root=root)))

    def boom(config, facts):
        raise KeyError("surprise")
    monkeypatch.setattr(judge, "spec_from_config", boom)
    with pytest.raises(judge.Refused, match=r"cannot judge .*config.json \(KeyError: 'surprise'\): refused"):
        judge.check_bundle(str(bundle), str(root), ID, None)
