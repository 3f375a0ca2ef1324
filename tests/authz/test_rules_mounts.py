"""sensitive-mount, sensitive-volume, file-bind-mount: every form a host path is asked in."""
from __future__ import annotations

import pytest

from authz import policy as policies

from .helpers import FakeContext, allowed, create, create_problems, decide, denied_by, hc


@pytest.mark.parametrize("src,sensitive", [
    ("/etc", "/etc"), ("/etc/", "/etc"), ("//etc", "/etc"), ("/etc/../etc", "/etc"), ("/etc/./", "/etc"),
    ("/tmp/../etc", "/etc"), ("/etc/passwd", "/etc"), ("/etc/docker/daemon.json", "/etc/docker"),
    ("/", "/"), ("//", "/"), ("/boot", "/boot"), ("/proc/1/root", "/proc"), ("/sys", "/sys"),
    ("/dev", "/dev"), ("/root/.ssh", "/root"), ("/usr/bin", "/usr"), ("/lib/modules", "/lib"),
    ("/var/run/docker.sock", "/var/run/docker.sock"), ("/run/docker.sock", "/run/docker.sock"),
    ("/var/lib/docker/volumes", "/var/lib/docker"), ("/var/log/syslog", "/var/log"),
])
def test_sensitive_binds(src, sensitive):
    msg = denied_by(create(hc(Binds=[f"{src}:/x"])), "sensitive-mount")
    assert f"Binds {src}:/x (sensitive: {sensitive})" in msg


@pytest.mark.parametrize("src,exposed", [("/var", "/var/log"), ("/var/", "/var/log"), ("/run", "/run/docker"),
                                         ("/var/lib", "/var/lib/docker"), ("/root/..", "/")])
def test_an_ancestor_of_a_sensitive_path_exposes_it(src, exposed):
    msg = denied_by(create(hc(Binds=[f"{src}:/x"])), "sensitive-mount")
    assert f"(sensitive: {exposed})" in msg


@pytest.mark.parametrize("src", ["/tmp/x", "/etcetera", "/etc2", "/srv/data", "/home/user/project", "/opt/app",
                                 "/var/tmp", "/mnt/data", "/bootstrap"])
def test_benign_binds(src):
    allowed(create(hc(Binds=[f"{src}:/x"])))
    allowed(create(hc(Mounts=[{"Type": "bind", "Source": src, "Target": "/x"}])))


def test_symlink_is_resolved():
    ctx = FakeContext(realpaths={"/srv/innocent": "/etc"})
    msg = denied_by(create(hc(Binds=["/srv/innocent:/x"]), ctx=ctx), "sensitive-mount")
    assert "(sensitive: /etc)" in msg
    ctx = FakeContext(realpaths={"/srv/link": "/srv/data"})
    allowed(create(hc(Binds=["/srv/link:/x"]), ctx=ctx))


def test_mounts_bind_and_top_level_and_folded():
    denied_by(create(hc(Mounts=[{"Type": "bind", "Source": "/boot", "Target": "/b"}])), "sensitive-mount")
    denied_by(create({"Image": "x", "Cmd": ["true"], "Binds": ["/etc:/x"]}), "sensitive-mount")
    denied_by(create({"Image": "x", "Cmd": ["true"], "HostConfig": None, "Mounts": [
        {"Type": "bind", "Source": "/etc", "Target": "/x"}]}), "sensitive-mount")
    denied_by(create('{"Image":"x","Cmd":["true"],"Ho\u017ftConfig":{"binds":["/etc:/x"]}}'), "sensitive-mount")
    denied_by(create('{"Image":"x","Cmd":["true"],"HostConfig":{"Binds":["/srv:/x"]},'
                     '"HostConfig":{"Mounts":[{"type":"bind","source":"/etc","target":"/y"}]}}'), "sensitive-mount")
    denied_by(create(hc(Binds=["/etc:/x:ro"])), "sensitive-mount")  # read-only is still a read of secrets


def test_docker_root_elsewhere():
    ctx = FakeContext(docker_root="/data/docker")
    msg = denied_by(create(hc(Binds=["/data/docker/containers:/x"]), ctx=ctx), "sensitive-mount")
    assert "(sensitive: /data/docker)" in msg
    denied_by(create(hc(Binds=["/data:/x"]), ctx=FakeContext(docker_root="/data/docker")), "sensitive-mount")
    denied_by(create(hc(Binds=["/data/docker/..:/x"]), ctx=FakeContext(docker_root="/data/docker")), "sensitive-mount")
    allowed(create(hc(Binds=["/data/other:/x"]), ctx=FakeContext(docker_root="/data/docker")))
    # the root given through a symlink
    ctx = FakeContext(docker_root="/dockerlink", realpaths={"/dockerlink": "/big/docker"})
    denied_by(create(hc(Binds=["/big/docker/volumes:/x"]), ctx=ctx), "sensitive-mount")


def test_static_paths_need_no_daemon_lookup():
    out = create(hc(Binds=["/etc:/x"]), fail={"docker_root"})
    denied_by(out, "sensitive-mount")
    assert "could not look up" not in out.msg


@pytest.mark.parametrize("driver", ["", "local"])
@pytest.mark.parametrize("o", ["bind", "rbind", "ro,bind", " bind ", "bind,ro"])
def test_volume_options_bind_through_mounts(driver, o):
    m = {"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {
        "Name": driver, "Options": {"type": "none", "o": o, "device": "/etc"}}}}
    msg = denied_by(create(hc(Mounts=[m])), "sensitive-mount")
    assert "volume with o=bind device=/etc (sensitive: /etc)" in msg
    m["VolumeOptions"]["DriverConfig"]["Options"]["device"] = "/srv/data"
    allowed(create(hc(Mounts=[m])))


def test_volume_options_without_bind_or_another_driver():
    m = {"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {
        "Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}}
    allowed(create(hc(Mounts=[m])))
    m = {"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {
        "Name": "nfs-plugin", "Options": {"o": "bind", "device": "/etc"}}}}
    allowed(create(hc(Mounts=[m])))


def test_volume_bind_with_empty_device():
    m = {"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {"Options": {"o": "bind"}}}}
    assert "(empty device)" in denied_by(create(hc(Mounts=[m])), "sensitive-mount")


ETC_VOLUME = {"Name": "etcvol", "Driver": "local", "Options": {"type": "none", "o": "bind", "device": "/etc"}}


@pytest.mark.parametrize("how", [
    {"Binds": ["etcvol:/x"]},
    {"Binds": ["etcvol:/x:ro"]},
    {"Mounts": [{"Type": "volume", "Source": "etcvol", "Target": "/x"}]},
    # options given for a volume that already exists are ignored by dockerd: still looked up
    {"Mounts": [{"Type": "volume", "Source": "etcvol", "Target": "/x",
                 "VolumeOptions": {"DriverConfig": {"Options": {"foo": "bar"}}}}]},
])
def test_named_volume_made_earlier_with_bind(how):
    ctx = FakeContext(volumes={"etcvol": ETC_VOLUME})
    msg = denied_by(create(hc(**how), ctx=ctx), "sensitive-mount")
    assert "volume etcvol (o=bind device=/etc) (sensitive: /etc)" in msg


def test_named_volume_plain_or_missing_is_fine():
    ctx = FakeContext(volumes={"data": {"Name": "data", "Driver": "local", "Options": None},
                               "nfs": {"Name": "nfs", "Driver": "other", "Options": {"o": "bind", "device": "/etc"}}})
    allowed(create(hc(Binds=["data:/x", "nfs:/y", "newvol:/z"]), ctx=ctx))
    assert ("volume", "newvol") in ctx.calls


def test_named_volume_lookup_failure_denies():
    out = create(hc(Binds=["data:/x"]), fail={"volume"})
    assert "could not look up" in denied_by(out, "sensitive-mount")


def test_anonymous_volumes_need_no_lookup():
    out = create({"Image": "x", "Cmd": ["true"], "Volumes": {"/data": {}}, "HostConfig": {"Binds": ["/cache"]}},
                 fail={"volume", "docker_root"})
    allowed(out)


def test_old_api_start_and_services():
    denied_by(decide("POST", "/v1.23/containers/x/start", {"Binds": ["/etc:/x"]}), "sensitive-mount")
    body = {"TaskTemplate": {"ContainerSpec": {"Image": "x", "Mounts": [
        {"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/s"}]}}}
    msg = denied_by(decide("POST", "/services/create", body), "sensitive-mount")
    assert "service /var/run/docker.sock:/s" in msg
    denied_by(decide("POST", "/services/s/update", body), "sensitive-mount")
    body["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Source"] = "/srv/data"
    allowed(decide("POST", "/services/create", body))


def test_policy_list_extends(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[lists]\nsensitive_paths = ["/srv/secret"]\n')
    pol = policies.load(p)
    denied_by(create(hc(Binds=["/srv/secret/db:/db"]), policy=pol), "sensitive-mount")
    denied_by(create(hc(Binds=["/srv:/db"]), policy=pol), "sensitive-mount")  # its ancestor
    allowed(create(hc(Binds=["/srv/public:/db"]), policy=pol))


# ---- volume create ----

@pytest.mark.parametrize("driver", [None, "", "local"])
def test_volume_create_bind_to_sensitive_path(driver):
    body = {"Name": "v", "DriverOpts": {"type": "none", "o": "bind", "device": "/etc"}}
    if driver is not None:
        body["Driver"] = driver
    msg = denied_by(decide("POST", "/v1.41/volumes/create", body), "sensitive-volume")
    assert "volume with o=bind device=/etc (sensitive: /etc)" in msg


def test_volume_create_evasions_and_twins():
    denied_by(decide("POST", "/volumes/create", {"driveropts": {"o": "rbind", "device": "//etc/"}}),
              "sensitive-volume")
    denied_by(decide("POST", "/volumes/create", '{"DriverOpts":{"o":"bind","device":"/srv"},'
                                                 '"DriverOpts":{"device":"/var"}}'), "sensitive-volume")
    assert "(empty device)" in denied_by(decide("POST", "/volumes/create", {"DriverOpts": {"o": "bind"}}),
                                         "sensitive-volume")
    allowed(decide("POST", "/volumes/create", {"DriverOpts": {"o": "bind", "device": "/srv/data"}}))
    allowed(decide("POST", "/volumes/create", {"Name": "plain"}))
    allowed(decide("POST", "/volumes/create", {"Driver": "nfs", "DriverOpts": {"o": "bind", "device": "/etc"}}))
    denied_by(decide("POST", "/volumes/create", {"DriverOpts": {"o": "bind", "device": "/srv/x"}},
                     realpaths={"/srv/x": "/etc"}), "sensitive-volume")


# ---- file bind mounts (audit) ----

def test_file_bind_mount_is_audited():
    out = create(hc(Binds=["/srv/conf.txt:/conf.txt"]), regular_files={"/srv/conf.txt"})
    allowed(out)
    rec = out.record
    assert rec["decision"] == "audit" and rec["rule"] == "file-bind-mount"
    assert "Binds /srv/conf.txt:/conf.txt is a file" in rec["msg"]
    out = create(hc(Binds=["/srv/dir:/dir"]))
    assert out.record["decision"] == "allow"
    assert create_problems("file-bind-mount", hc(Mounts=[{"Type": "bind", "Source": "/srv/f", "Target": "/f"}]),
                           regular_files={"/srv/f"}) == ["Mounts /srv/f:/f is a file"]


def test_repeated_mounts_list_merges_as_in_go():
    body = ('{"Image":"x","Cmd":["true"],"HostConfig":{'
            '"Mounts":[{"Type":"bind","Source":"/etc","Target":"/x"}],"Mounts":[{"Target":"/y"}]}}')
    assert "Mounts /etc:/y" in denied_by(create(body), "sensitive-mount")
    body = ('{"Image":"x","Cmd":["true"],"HostConfig":{'
            '"Devices":[{"PathOnHost":"/dev/mem"}],"Devices":[{"PathInContainer":"/dev/x"}]}}')
    denied_by(create(body), "sensitive-device")


# --volumes-from X inherits X's binds (made before dockguard, or under another policy)
FROM = {
    "etcbinder": {"Mounts": [{"Type": "bind", "Source": "/etc", "Destination": "/x"}]},
    "databinder": {"Mounts": [{"Type": "bind", "Source": "/srv/data", "Destination": "/d"},
                              {"Type": "volume", "Name": "plainvol", "Source": "/var/lib/docker/volumes/plainvol/_data",
                               "Destination": "/v", "Driver": "local"}]},
    "volbinder": {"Mounts": [{"Type": "volume", "Name": "etcvol", "Driver": "local", "Destination": "/v",
                              "Source": "/var/lib/docker/volumes/etcvol/_data"}]},
}
VOLS = {"etcvol": {"Driver": "local", "Options": {"type": "none", "o": "bind", "device": "/etc"}},
        "plainvol": {"Driver": "local", "Options": {}}}


@pytest.mark.parametrize("ref", ["etcbinder", "etcbinder:ro", "volbinder"])
def test_volumes_from_a_container_with_sensitive_binds(ref):
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"VolumesFrom": [ref]}}
    out = create_problems("sensitive-mount", body, containers=FROM, volumes=VOLS)
    assert out and f"--volumes-from {ref}" in out[0] and "(sensitive: /etc)" in out[0]


def test_volumes_from_a_container_with_benign_mounts():
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"VolumesFrom": ["databinder:rw"]}}
    assert not create_problems("sensitive-mount", body, containers=FROM, volumes=VOLS)
