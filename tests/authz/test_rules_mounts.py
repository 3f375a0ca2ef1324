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


@pytest.mark.parametrize("src,exposed", [("/root/..", "/"), ("/etc/..", "/"), ("/srv/..", "/")])
def test_an_ancestor_of_a_sensitive_path_exposes_it(src, exposed):
    msg = denied_by(create(hc(Binds=[f"{src}:/x"])), "sensitive-mount")
    assert f"(sensitive: {exposed})" in msg


@pytest.mark.parametrize("src", ["/tmp/x", "/etcetera", "/etc2", "/srv/data", "/home/user/project", "/opt/app",
                                 "/mnt/data", "/bootstrap", "/variable", "/runner", "/srv/var/run"])
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
@pytest.mark.parametrize("o", ["bind", "rbind", "ro,bind", "bind,ro", "remount,bind", "nosuid,rbind,ro"])
def test_volume_options_bind_through_mounts(driver, o):
    m = {"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {
        "Name": driver, "Options": {"type": "none", "o": o, "device": "/etc"}}}}
    msg = denied_by(create(hc(Mounts=[m])), "sensitive-mount")
    assert "Mounts volume (o=bind device=/etc) (sensitive: /etc)" in msg
    m["VolumeOptions"]["DriverConfig"]["Options"]["device"] = "/srv/data"
    allowed(create(hc(Mounts=[m])))


@pytest.mark.parametrize("o", [" bind ", "BIND", "bind ", "Rbind"])
def test_almost_bind_is_judged_as_a_bind_and_as_a_mount(o):
    """moby/sys/mount matches `bind` exactly: " bind" is filesystem data, so the kernel mounts
    `type`; we judge the device as a bind source too (stricter)."""
    m = {"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {
        "Options": {"type": "none", "o": o, "device": "/etc"}}}}
    out = create(hc(Mounts=[m]))
    denied_by(out, "sensitive-mount")
    assert "[volume-mount-type]" in out.msg and "type 'none' is not an allowed volume type" in out.msg
    m["VolumeOptions"]["DriverConfig"]["Options"]["device"] = "/srv/data"
    assert "type 'none'" in denied_by(create(hc(Mounts=[m])), "volume-mount-type")


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
    assert "[volume-mount-type]" not in msg  # a bind is judged by its path, not its type


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
    assert "volume v (o=bind device=/etc) (sensitive: /etc)" in msg


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
    assert rec["decision"] == "audit" and rec["rule"] == ["file-bind-mount"]
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


# ---- host state under /run and /var (issue 7, hole 6) ----

@pytest.mark.parametrize("src,sensitive", [
    ("/run/dbus", "/run"), ("/run/systemd", "/run"), ("/run/user/1000", "/run"), ("/run/lock", "/run"),
    ("/var/run/dbus", "/var/run"), ("/var/lock", "/var/lock"), ("/var/spool/cron", "/var"),
    ("/var/backups", "/var"), ("/var/lib/apt", "/var"), ("/var/cache", "/var"), ("/var/tmp", "/var"),
    ("/var/mail", "/var"), ("/var", "/var"), ("/run", "/run"), ("/var/lib/docker/x", "/var/lib/docker"),
    ("/swapfile", "/swapfile"), ("/swap.img", "/swap.img"),
])
def test_everything_under_run_and_var(src, sensitive):
    msg = denied_by(create(hc(Binds=[f"{src}:/x"])), "sensitive-mount")
    assert f"(sensitive: {sensitive})" in msg
    denied_by(decide("POST", "/volumes/create", {"DriverOpts": {"type": "none", "o": "bind", "device": src}}),
              "sensitive-volume")


def test_var_run_through_its_symlink():
    ctx = FakeContext(realpaths={"/srv/dbus-link": "/run/dbus"})
    assert "(sensitive: /run)" in denied_by(create(hc(Binds=["/srv/dbus-link:/x"]), ctx=ctx), "sensitive-mount")


def allowing(tmp_path, *paths):
    p = tmp_path / "p.toml"
    p.write_text("[lists]\nallowed_paths = [" + ", ".join(f'"{x}"' for x in paths) + "]\n")
    return policies.load(p)


@pytest.mark.parametrize("src", ["/var/log/app", "/var/log/app/", "/var/log/app/2024", "/run/app/sock-dir",
                                 "/var/lib/foo", "/var/lib/foo/bar"])
def test_allowed_paths_carve_out(tmp_path, src):
    pol = allowing(tmp_path, "/var/log/app", "/run/app", "/var/lib")
    allowed(create(hc(Binds=[f"{src}:/x"]), policy=pol))
    allowed(decide("POST", "/volumes/create", {"DriverOpts": {"type": "none", "o": "bind", "device": src}},
                   policy=pol))


@pytest.mark.parametrize("src,sensitive", [
    ("/var/log", "/var/log"), ("/var/log/app/../secure", "/var/log"), ("/var/log/apparmor", "/var/log"),
    ("/run", "/run"), ("/run/apple", "/run"),
    ("/var/lib", "/var/lib/docker"),               # the carve-out holds sensitive paths: still refused
    ("/var/lib/docker", "/var/lib/docker"),        # a deeper sensitive path wins
    ("/var/lib/docker/volumes/x/_data", "/var/lib/docker"),
])
def test_allowed_paths_do_not_open_more(tmp_path, src, sensitive):
    pol = allowing(tmp_path, "/var/log/app", "/run/app", "/var/lib")
    msg = denied_by(create(hc(Binds=[f"{src}:/x"]), policy=pol), "sensitive-mount")
    assert f"(sensitive: {sensitive})" in msg


def test_allowed_path_through_a_symlink_is_judged_where_it_leads(tmp_path):
    pol = allowing(tmp_path, "/var/log/app")
    ctx = FakeContext(lists=pol.lists, realpaths={"/var/log/app/link": "/etc"})
    assert "(sensitive: /etc)" in denied_by(create(hc(Binds=["/var/log/app/link:/x"]), policy=pol, ctx=ctx),
                                            "sensitive-mount")


def test_equal_to_a_sensitive_path_carves_nothing(tmp_path):
    pol = allowing(tmp_path, "/etc", "/var/log")
    denied_by(create(hc(Binds=["/etc/x:/x"]), policy=pol), "sensitive-mount")
    denied_by(create(hc(Binds=["/var/log/x:/x"]), policy=pol), "sensitive-mount")


# ---- the daemon's actual exec-root and containerd's directories ----

def with_dirs(*dirs, **kw):
    ctx = FakeContext(**kw)
    ctx.dirs = frozenset(dirs)
    return ctx


@pytest.mark.parametrize("src,sensitive", [
    ("/srv/dexec", "/srv/dexec"), ("/srv/dexec/netns/abc", "/srv/dexec"), ("/srv", "/srv/dexec"),
    ("/data/ctd-state/io.containerd.runtime.v2.task", "/data/ctd-state"),
])
def test_exec_root_elsewhere(src, sensitive):
    ctx = with_dirs("/srv/dexec", "/data/ctd-state")
    msg = denied_by(create(hc(Binds=[f"{src}:/x"]), ctx=ctx), "sensitive-mount")
    assert f"(sensitive: {sensitive})" in msg
    assert ("daemon_dirs",) in ctx.calls


def test_exec_root_elsewhere_benign_and_not_carved_out(tmp_path):
    allowed(create(hc(Binds=["/srv/data:/x"]), ctx=with_dirs("/srv/dexec")))
    pol = allowing(tmp_path, "/srv/dexec")
    denied_by(create(hc(Binds=["/srv/dexec/x:/x"]), policy=pol, ctx=with_dirs("/srv/dexec", lists=pol.lists)),
              "sensitive-mount")


def test_exec_root_lookup_only_when_needed_and_failure_denies():
    ctx = with_dirs("/srv/dexec")
    denied_by(create(hc(Binds=["/etc:/x"]), ctx=ctx), "sensitive-mount")
    assert ("daemon_dirs",) not in ctx.calls
    out = create(hc(Binds=["/srv/data:/x"]), fail={"daemon_dirs"})
    assert "could not look up daemon_dirs" in denied_by(out, "sensitive-mount")


def test_relative_bind_device():
    body = {"DriverOpts": {"type": "none", "o": "bind", "device": "etc"}}
    msg = denied_by(decide("POST", "/volumes/create", body), "sensitive-volume")
    assert "relative path 'etc'" in msg
