"""volume-mount-type: what a `local` volume mounts, wherever its options are given
(volume create, a create's or a service's Mounts, a volume made earlier, --volumes-from)."""
from __future__ import annotations

import pytest

from authz import policy as policies

from .helpers import FakeContext, allowed, create, create_problems, decide, denied_by, hc

PROC = {"type": "proc", "device": "proc"}
OVERLAY = {"type": "overlay", "device": "overlay", "o": "lowerdir=/etc:/tmp/x"}
BLOCK = {"type": "ext4", "device": "/dev/vda"}
TMPFS = {"type": "tmpfs", "device": "tmpfs", "o": "size=64m"}


def inline(opts, driver="local", source=""):
    m = {"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {"Name": driver, "Options": opts}}}
    if source:
        m["Source"] = source
    return m


@pytest.mark.parametrize("opts,what", [
    (PROC, "type 'proc' shows the host kernel's own state"),
    (OVERLAY, "type 'overlay' is not an allowed volume type"),
    (BLOCK, "type 'ext4' is not an allowed volume type"),
    ({"type": "cgroup", "device": "cgroup"}, "shows the host kernel's own state"),
    ({"Type": "sysfs", "Device": "sysfs"}, "shows the host kernel's own state"),
    ({"type": "nfs", "device": "127.0.0.1:/", "o": "addr=127.0.0.1"}, "not in the policy's volume_servers"),
])
def test_volume_create(opts, what):
    for body in ({"Name": "v", "DriverOpts": opts}, {"name": "v", "driver": "local", "driveropts": opts}):
        msg = denied_by(decide("POST", "/v1.41/volumes/create", body), "volume-mount-type")
        assert "volume v: " in msg and what in msg


@pytest.mark.parametrize("body", [
    {"Name": "plain"}, {"Name": "t", "DriverOpts": TMPFS}, {"Name": "q", "DriverOpts": {"size": "1g"}},
    {"Name": "b", "DriverOpts": {"type": "none", "o": "bind", "device": "/srv/data"}},
    {"Name": "p", "Driver": "some-plugin", "DriverOpts": PROC},   # a plugin's options are its own
])
def test_volume_create_benign(body):
    allowed(decide("POST", "/volumes/create", body))


@pytest.mark.parametrize("opts", [PROC, OVERLAY, BLOCK])
@pytest.mark.parametrize("driver", ["", "local"])
def test_inline_at_create(opts, driver):
    msg = denied_by(create(hc(Mounts=[inline(opts, driver)])), "volume-mount-type")
    assert "Mounts volume: type=" in msg
    # through a named, not yet existing volume too (dockerd creates it with these options)
    out = create(hc(Mounts=[inline(opts, driver, source="newvol")]))
    assert "Mounts volume newvol: type=" in denied_by(out, "volume-mount-type")


def test_inline_benign_twins():
    allowed(create(hc(Mounts=[inline(TMPFS)])))
    allowed(create(hc(Mounts=[inline({})])))
    allowed(create(hc(Mounts=[inline(PROC, driver="some-plugin")])))
    allowed(create(hc(Mounts=[{"Type": "volume", "Source": "data", "Target": "/x"}])))


def test_service_mounts():
    body = {"TaskTemplate": {"ContainerSpec": {"Image": "x", "Mounts": [inline(PROC)]}}}
    assert "service volume: type=proc" in denied_by(decide("POST", "/services/create", body), "volume-mount-type")
    denied_by(decide("POST", "/services/s/update?version=1", body), "volume-mount-type")
    body["TaskTemplate"]["ContainerSpec"]["Mounts"] = [inline(TMPFS)]
    allowed(decide("POST", "/services/create", body))


VOLS = {
    "procvol": {"Name": "procvol", "Driver": "local", "Options": PROC},
    "ovl": {"Name": "ovl", "Driver": "local", "Options": OVERLAY},
    "disk": {"Name": "disk", "Driver": "local", "Options": BLOCK},
    "tmp": {"Name": "tmp", "Driver": "local", "Options": TMPFS},
    "plain": {"Name": "plain", "Driver": "local", "Options": None},
    "plug": {"Name": "plug", "Driver": "other", "Options": PROC},
}


@pytest.mark.parametrize("name", ["procvol", "ovl", "disk"])
@pytest.mark.parametrize("how", ["Binds", "Mounts", "MountsWithOptions"])
def test_volume_made_earlier_is_looked_up(name, how):
    if how == "Binds":
        h = hc(Binds=[f"{name}:/x:ro"])
    elif how == "Mounts":
        h = hc(Mounts=[{"Type": "volume", "Source": name, "Target": "/x"}])
    else:  # inline options are ignored by dockerd for a volume that exists: its own count
        h = hc(Mounts=[inline(TMPFS, source=name)])
    msg = denied_by(create(h, volumes=VOLS), "volume-mount-type")
    assert f"volume {name}: type=" in msg


def test_volume_made_earlier_benign():
    out = create(hc(Binds=["tmp:/a", "plain:/b", "plug:/c", "new:/d"]), volumes=VOLS)
    allowed(out)


CONTAINERS = {
    "holder": {"Mounts": [{"Type": "volume", "Name": "procvol", "Driver": "local", "Destination": "/p"}]},
    "fine": {"Mounts": [{"Type": "volume", "Name": "tmp", "Driver": "local", "Destination": "/t"},
                        {"Type": "volume", "Name": "plug", "Driver": "other", "Destination": "/o"}]},
}


def test_volumes_from():
    body = hc(VolumesFrom=["holder:ro"])
    out = create_problems("volume-mount-type", body, containers=CONTAINERS, volumes=VOLS)
    assert out == ["--volumes-from holder:ro (volume procvol): type=proc device=proc: "
                   "type 'proc' shows the host kernel's own state"]
    assert not create_problems("volume-mount-type", hc(VolumesFrom=["fine"]), containers=CONTAINERS, volumes=VOLS)


def test_lookup_failure_denies():
    out = create(hc(Binds=["procvol:/x"]), fail={"volume"})
    assert "could not look up" in denied_by(out, "volume-mount-type")


def test_old_api_start():
    denied_by(decide("POST", "/v1.23/containers/x/start", {"Binds": ["procvol:/x"]}, volumes=VOLS),
              "volume-mount-type")


def test_policy_servers_and_types(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[lists]\nvolume_servers = ["10.0.0.5", "[fd00::5]"]\nvolume_types = ["overlay"]\n')
    pol = policies.load(p)
    nfs = {"type": "nfs", "device": ":/export", "o": "addr=10.0.0.5"}
    allowed(decide("POST", "/volumes/create", {"DriverOpts": nfs}, policy=pol))
    allowed(decide("POST", "/volumes/create", {"DriverOpts": {"type": "nfs4", "device": "[fd00::5]:/e"}}, policy=pol))
    denied_by(decide("POST", "/volumes/create", {"DriverOpts": nfs}), "volume-mount-type")  # default policy
    # an allowed overlay is judged path by path, like bind sources
    msg = denied_by(decide("POST", "/volumes/create", {"DriverOpts": OVERLAY}, policy=pol), "volume-mount-type")
    assert "option path /etc (sensitive: /etc)" in msg
    ok = {"type": "overlay", "device": "overlay", "o": "lowerdir=/srv/a:/srv/b,upperdir=/srv/u,workdir=/srv/w"}
    allowed(decide("POST", "/volumes/create", {"DriverOpts": ok}, policy=pol))
    bad = dict(ok, o="lowerdir=/srv/a,upperdir=/srv/u,workdir=/var/lib/docker/x")
    denied_by(decide("POST", "/volumes/create", {"DriverOpts": bad}, policy=pol), "volume-mount-type")
    # a symlink to a sensitive path, resolved
    msg = denied_by(decide("POST", "/volumes/create", {"DriverOpts": ok}, policy=pol, realpaths={"/srv/b": "/etc"}),
                    "volume-mount-type")
    assert "option path /srv/b (sensitive: /etc)" in msg


@pytest.mark.parametrize("text,match", [
    ('[lists]\nvolume_types = ["proc"]\n', "lists.volume_types: 'proc' shows the host kernel's own state"),
    ('[lists]\nvolume_types = ["nfs"]\n', "allowed by listing its servers in volume_servers"),
    ('[lists]\nvolume_servers = ["nas/x"]\n', "volume_servers entry 'nas/x' must be a host name or an address"),
    ('[lists]\nallowed_paths = ["var/log"]\n', "allowed_paths entry 'var/log' must be an absolute path below /"),
    ('[lists]\nallowed_paths = ["//"]\n', "must be an absolute path below /"),
])
def test_policy_errors(tmp_path, text, match):
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(policies.PolicyError, match=match):
        policies.load(p)


def test_rule_can_be_turned_off(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[rules]\nvolume-mount-type = "off"\n')
    allowed(decide("POST", "/volumes/create", {"DriverOpts": PROC}, policy=policies.load(p)))
    ctx = FakeContext(volumes=VOLS)
    allowed(create(hc(Binds=["procvol:/x"]), policy=policies.load(p), ctx=ctx))
