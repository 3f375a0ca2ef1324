"""sensitive-device, device-cgroup-rule: by name, by node number, and by cgroup rule."""
from __future__ import annotations

import pytest

from authz import policy as policies

from .helpers import FakeContext, allowed, create, create_problems, decide, denied_by, hc

NODES = {
    "/dev/null": ("c", 1, 3), "/dev/zero": ("c", 1, 5), "/dev/fuse": ("c", 10, 229),
    "/dev/mem": ("c", 1, 1), "/dev/kmem": ("c", 1, 2), "/dev/port": ("c", 1, 4), "/dev/kmsg": ("c", 1, 11),
    "/dev/sda": ("b", 8, 0), "/dev/vda1": ("b", 253, 1), "/dev/snd": ("d", 0, 0),
    "/tmp/notmem": ("c", 1, 1), "/tmp/notdisk": ("b", 7, 0), "/tmp/notkmsg": ("c", 1, 11),
}


def ctx(**kw):
    return FakeContext(device_nodes=NODES, **kw)


def dev(host, container="", perms="rwm"):
    return hc(Devices=[{"PathOnHost": host, "PathInContainer": container or host, "CgroupPermissions": perms}])


@pytest.mark.parametrize("host", ["/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "//dev/mem", "/dev/../dev/mem",
                                  "/dev/./kmsg/"])
def test_listed_devices(host):
    msg = denied_by(create(dev(host), ctx=ctx()), "sensitive-device")
    assert f"--device {host}" in msg


@pytest.mark.parametrize("host,why", [
    ("/tmp/notmem", "memory device 1:1"), ("/tmp/notkmsg", "memory device 1:11"),
    ("/dev/sda", "block device 8:0"), ("/dev/vda1", "block device 253:1"), ("/tmp/notdisk", "block device 7:0"),
    ("/dev/snd", "a directory: every device under it"), ("/dev", "every host device"), ("/dev/", "every host device"),
])
def test_devices_by_what_they_are(host, why):
    msg = denied_by(create(dev(host), ctx=ctx()), "sensitive-device")
    assert f"--device {host} ({why})" in msg


@pytest.mark.parametrize("host", ["/dev/null", "/dev/zero", "/dev/fuse", "/dev/nonexistent"])
def test_harmless_devices(host):
    allowed(create(dev(host, "/dev/mine"), ctx=ctx()))


def test_symlinked_device():
    c = FakeContext(device_nodes=NODES, realpaths={"/dev/disk/by-id/wwn-1": "/dev/sda", "/srv/m": "/dev/mem"})
    assert "block device 8:0" in denied_by(create(dev("/dev/disk/by-id/wwn-1"), ctx=c), "sensitive-device")
    assert "--device /srv/m" in denied_by(create(dev("/srv/m"), ctx=c), "sensitive-device")


def test_devices_top_level_update_and_start():
    denied_by(create({"Image": "x", "Cmd": ["true"], "Devices": [{"PathOnHost": "/dev/mem"}]}, ctx=ctx()),
              "sensitive-device")
    denied_by(decide("POST", "/containers/x/update", {"Devices": [{"PathOnHost": "/dev/sda"}]}, ctx=ctx()),
              "sensitive-device")
    denied_by(decide("POST", "/v1.23/containers/x/start", {"Devices": [{"PathOnHost": "/dev/kmsg"}]}, ctx=ctx()),
              "sensitive-device")
    allowed(decide("POST", "/containers/x/update", {"CpuShares": 2}, ctx=ctx()))


def test_empty_host_path_is_skipped():
    assert create_problems("sensitive-device", hc(Devices=[{"PathInContainer": "/dev/x"}]), ctx=ctx()) == []


def test_policy_list_extends(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[lists]\nsensitive_devices = ["/dev/fuse"]\n')
    pol = policies.load(p)
    denied_by(create(dev("/dev/fuse"), policy=pol, ctx=FakeContext(lists=pol.lists, device_nodes=NODES)),
              "sensitive-device")


# ---- device cgroup rules ----

@pytest.mark.parametrize("r,why", [
    ("a", "all devices"), (" a ", "all devices"),
    ("a *:* rwm", "all devices of a type"), ("c *:* rwm", "all devices of a type"),
    ("b *:* r", "all devices of a type"), ("c *:5 rwm", "all devices of a type"),
    ("b 8:0 r", "block device"), ("b 7:* rwm", "block device"),
    ("c 1:* rwm", "memory devices"), ("c 1:1 rwm", "memory device"), ("c 1:01 r", "memory device"),
    ("c 1:11 w", "memory device"), ("c 1:4 m", "memory device"),
    ("c 10:229", "not a rule dockguard can read"), ("x 1:1 rwm", "not a rule dockguard can read"),
    ("c 1:1 rwx", "not a rule dockguard can read"), ("", "not a rule dockguard can read"),
])
def test_device_cgroup_rules_denied(r, why):
    msg = denied_by(create(hc(DeviceCgroupRules=[r])), "device-cgroup-rule")
    assert f"--device-cgroup-rule '{r}' ({why})" in msg


@pytest.mark.parametrize("r", ["c 10:229 rwm", "c 1:3 rwm", "c 1:5 r", "c 136:* rwm", "c  10:200  rw"])
def test_device_cgroup_rules_allowed(r):
    allowed(create(hc(DeviceCgroupRules=[r])))


def test_device_cgroup_rules_top_level_and_update():
    denied_by(create({"Image": "x", "Cmd": ["true"], "DeviceCgroupRules": ["a"]}), "device-cgroup-rule")
    denied_by(decide("POST", "/containers/x/update", {"DeviceCgroupRules": ["b 8:0 rwm"]}), "device-cgroup-rule")
