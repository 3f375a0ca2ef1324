"""authz.spec: create/update/exec/service/start bodies -> the one Spec every rule reads."""
from __future__ import annotations

import json

import pytest

from authz import spec as specs
from authz.gojson import BodyError, decode
from authz.spec import Mount, parse_bind


def body(d) -> object:
    return decode(json.dumps(d, ensure_ascii=False) if not isinstance(d, str) else d)


def create(d, name=""):
    return specs.from_create(body(d), name)


def test_create_reads_config_and_host_config():
    s = create({
        "Image": "busybox", "Cmd": ["sh", "-c", "x"], "Entrypoint": "/init", "User": "nobody",
        "AttachStdin": True, "AttachStdout": True, "Tty": True, "OpenStdin": True,
        "Labels": {"a": "b"}, "Volumes": {"/data": {}},
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5, "Retries": 2},
        "HostConfig": {
            "Privileged": True, "PidMode": "host", "IpcMode": "shareable", "NetworkMode": "bridge",
            "UTSMode": "host", "UsernsMode": "host", "CgroupnsMode": "private",
            "CapAdd": ["NET_ADMIN"], "SecurityOpt": ["seccomp=unconfined"],
            "MaskedPaths": ["/proc/kcore"], "ReadonlyPaths": [],
            "Binds": ["/srv:/srv:ro"], "Mounts": [{"Type": "Bind", "Source": "/a", "Target": "/b", "ReadOnly": True}],
            "Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rw"}],
            "DeviceCgroupRules": ["c 10:229 rwm"], "KernelMemory": 10, "KernelMemoryTCP": 20,
            "BlkioWeight": 300, "BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 10}],
            "AutoRemove": True, "Tmpfs": {"/run": "rw"},
        },
        "NetworkingConfig": {"EndpointsConfig": {"host": {}}},
    }, name="web")
    assert s.name == "web" and s.image == "busybox" and s.user == "nobody"
    assert s.cmd == ["sh", "-c", "x"] and s.entrypoint == ["/init"]
    assert s.attach_stdin and s.attach_stdout and not s.attach_stderr and s.tty and s.open_stdin
    assert s.labels == {"a": "b"}
    assert s.health_test == ["CMD", "true"] and s.health_options == {"interval": 5, "retries": 2}
    assert s.privileged
    assert s.namespaces == {"pid": ["host"], "ipc": ["shareable"], "net": ["bridge"], "uts": ["host"],
                            "userns": ["host"], "cgroupns": ["private"]}
    assert s.cap_add == ["NET_ADMIN"] and s.capabilities is None
    assert s.security_opt == ["seccomp=unconfined"]
    assert s.masked_paths == [["/proc/kcore"]] and s.readonly_paths == [[]]
    kinds = [(m.kind, m.source, m.target, m.read_only, m.origin) for m in s.mounts]
    assert ("volume", "", "/data", False, "Volumes") in kinds
    assert ("bind", "/srv", "/srv", True, "Binds") in kinds
    assert ("bind", "/a", "/b", True, "Mounts") in kinds  # Type is read case-insensitively
    assert ("tmpfs", "", "/run", False, "Tmpfs") in kinds
    assert [(d.host, d.container, d.perms) for d in s.devices] == [("/dev/fuse", "/dev/fuse", "rw")]
    assert s.device_cgroup_rules == ["c 10:229 rwm"]
    assert (s.kernel_memory, s.kernel_memory_tcp, s.blkio_weight) == (10, 20, 300)
    assert s.blkio_weight_device == ["/dev/sda"]
    assert s.auto_remove
    assert s.networks == ["host"]


def test_empty_create():
    s = create({})
    assert not s.privileged and s.cap_add == [] and s.capabilities is None and s.mounts == []
    assert s.cmd is None and s.entrypoint is None and s.health_test is None


@pytest.mark.parametrize("field,value,check", [
    ("Privileged", True, lambda s: s.privileged),
    ("PidMode", "host", lambda s: s.namespaces == {"pid": ["host"]}),
    ("CapAdd", "SYS_ADMIN", lambda s: s.cap_add == ["SYS_ADMIN"]),
    ("Binds", ["/etc:/x"], lambda s: [m.source for m in s.mounts] == ["/etc"]),
    ("Devices", [{"PathOnHost": "/dev/mem"}], lambda s: [d.host for d in s.devices] == ["/dev/mem"]),
    ("SecurityOpt", ["label=disable"], lambda s: s.security_opt == ["label=disable"]),
    ("KernelMemory", 1, lambda s: s.kernel_memory == 1),
    ("AutoRemove", True, lambda s: s.auto_remove),
    ("MaskedPaths", [], lambda s: s.masked_paths == [[]]),
])
def test_top_level_host_config_fields_are_honoured(field, value, check):
    """dockerd (20.10 and 26, checked) applies the top-level fields when no HostConfig object
    is left: none given, null, or erased by a later null."""
    for b in ({"Image": "x", field: value},
              {"Image": "x", "HostConfig": None, field: value},
              '{"Image": "x", "HostConfig": {"Privileged": false}, "HostConfig": null, "%s": %s}'
              % (field, json.dumps(value))):
        assert check(create(b)), b
    # ... and ignores them next to a HostConfig object, even an empty one
    assert not check(create({"Image": "x", "HostConfig": {}, field: value}))


def test_host_config_object_wins_over_top_level_fields():
    s = create({"Image": "x", "CapAdd": ["SYS_ADMIN"], "HostConfig": {"CapAdd": ["CHOWN"], "Privileged": False},
                "Privileged": True})
    assert s.cap_add == ["CHOWN"] and not s.privileged


@pytest.mark.parametrize("text,privileged,pid", [
    # a later null sets dockerd's *HostConfig back to nil: the erased object is not applied
    ('{"HostConfig": {"Privileged": true}, "HostConfig": null}', False, []),
    ('{"HostConfig": {"Privileged": true}, "HostConfig": null, "PidMode": "host"}', False, ["host"]),
    # an object after the null starts afresh
    ('{"HostConfig": {"PidMode": "host"}, "HostConfig": null, "HostConfig": {"Privileged": true}}', True, []),
    # objects merge while the pointer is set (Go decodes into the same struct)
    ('{"HostConfig": {"PidMode": "host"}, "hostconfig": {"Privileged": true}}', True, ["host"]),
    ('{"HostConfig": null, "Ho\u017ftConfig": {"Privileged": true}, "PidMode": "host"}', True, []),
])
def test_host_config_pointer_as_dockerd_decodes_it(text, privileged, pid):
    for s in (create(text), specs.from_host_config(body(text))):
        assert s.privileged is privileged and s.namespaces.get("pid", []) == pid, text


def test_host_config_of_a_wrong_type_is_refused():
    with pytest.raises(BodyError, match="(?i)hostconfig must be an object"):
        create('{"HostConfig": {}, "HostConfig": "x"}')


def test_capabilities_field_is_not_read():
    # API 1.40 only (19.03); dockerd 20.10 and 26 ignore it, even wrongly typed
    assert create({"HostConfig": {"Capabilities": ["CAP_SYS_ADMIN"]}}).capabilities is None
    assert create({"HostConfig": {"Capabilities": 5}}).capabilities is None


def test_annotations_and_runtime():
    s = create({"HostConfig": {"Annotations": {"a.b": "1", "A.b": "2"}, "Runtime": "runc"}})
    assert s.annotations == {"a.b": "1", "A.b": "2"} and s.runtime == "runc"  # map keys exact
    s = create({"Annotations": {"top": "x"}, "Runtime": "crun"})  # top level, no HostConfig
    assert s.annotations == {"top": "x"} and s.runtime == "crun"
    s = create({"Annotations": {"top": "x"}, "HostConfig": {}})
    assert s.annotations == {} and s.runtime == ""
    with pytest.raises(BodyError, match="(?i)annotations"):
        create({"HostConfig": {"Annotations": {"a": 1}}})


@pytest.mark.parametrize("opt,key", [("Interval", "interval"), ("Timeout", "timeout"),
                                     ("StartPeriod", "startperiod"), ("StartInterval", "startinterval"),
                                     ("Retries", "retries"), ("startinterval", "startinterval")])
def test_every_health_option_is_one(opt, key):
    s = create({"Healthcheck": {"Test": ["NONE"], opt: 5}})
    assert s.health_options == {key: 5}


def test_folded_and_duplicate_keys():
    s = create('{"Image":"x","Ho\u017ftConfig":{"Privileged":true}}')
    assert s.privileged
    s = create('{"Image":"x","HostConfig":{"PidMode":"host"},"HostConfig":{"Memory":1}}')
    assert s.namespaces == {"pid": ["host"]}
    s = create('{"Image":"x","HostConfig":{"Privileged":true,"privileged":false}}')
    assert not s.privileged
    with pytest.raises(BodyError, match="ambiguous"):
        create('{"Image":"x","HostConfig":{"Pr\u0131vileged":true}}')


@pytest.mark.parametrize("b,match", [
    ('["Image"]', "must be a JSON object"),
    ('{"HostConfig": {"Privileged": "yes"}}', "privileged must be a boolean"),
    ('{"HostConfig": {"Binds": "/etc:/x"}}', "binds must be a list of strings"),
    ('{"HostConfig": {"KernelMemory": 1.5}}', "kernelmemory must be an integer"),
    ('{"HostConfig": 5}', "hostconfig must be an object"),
    ('{"Cmd": 5}', "cmd must be a string or a list of strings"),
    ('{"Labels": {"a": 5}}', "must be a string"),
    ('{"HostConfig": {"Mounts": [{"Type": 5}]}}', "must be a string"),
    ('{"HostConfig": {"Mounts": [{"VolumeOptions": {"DriverConfig": {"Options": {"o": 1}}}}]}}', "must be a string"),
])
def test_wrongly_typed_create_bodies(b, match):
    with pytest.raises(BodyError, match=match):
        create(b)


@pytest.mark.parametrize("bind,expected", [
    ("/etc:/x", Mount("bind", "/etc", "/x", False, origin="Binds")),
    ("/etc:/x:ro", Mount("bind", "/etc", "/x", True, origin="Binds")),
    ("/etc:/x:ro,Z", Mount("bind", "/etc", "/x", True, origin="Binds")),
    ("/etc:/x:rw", Mount("bind", "/etc", "/x", False, origin="Binds")),
    ("./rel:/x", Mount("bind", "./rel", "/x", False, origin="Binds")),
    ("named:/x", Mount("volume", "named", "/x", False, origin="Binds")),
    ("named:/x:ro", Mount("volume", "named", "/x", True, origin="Binds")),
    ("/anon", Mount("volume", "", "/anon", False, origin="Binds")),
    ("/anon:ro", Mount("volume", "", "/anon", True, origin="Binds")),
    ("/anon:ro,z", Mount("volume", "", "/anon", True, origin="Binds")),
    ("/a:/b:c:d", Mount("bind", "/a", "/b", False, origin="Binds")),
])
def test_parse_bind(bind, expected):
    assert parse_bind(bind) == expected


def test_mounts_with_volume_options():
    s = create({"HostConfig": {"Mounts": [{"Type": "volume", "Target": "/x", "VolumeOptions": {
        "DriverConfig": {"Name": "local", "Options": {"type": "none", "o": "bind", "device": "/etc"}}}}]}})
    m = s.mounts[0]
    assert (m.kind, m.driver, m.driver_opts["device"], m.driver_opts["o"]) == ("volume", "local", "/etc", "bind")


def test_update():
    s = specs.from_update(body({"KernelMemory": 5, "BlkioWeight": 300, "CpuShares": 512,
                                "Devices": [{"PathOnHost": "/dev/mem", "CgroupPermissions": "rwm"}],
                                "DeviceCgroupRules": ["a"], "BlkioWeightDevice": [{"Path": "/dev/vda"}]}))
    assert (s.kernel_memory, s.blkio_weight) == (5, 300)
    assert s.devices[0].host == "/dev/mem" and s.device_cgroup_rules == ["a"]
    assert s.blkio_weight_device == ["/dev/vda"]
    assert not s.privileged and s.mounts == []
    with pytest.raises(BodyError):
        specs.from_update(body([]))


def test_exec():
    s = specs.from_exec(body({"Privileged": True, "User": "root", "Tty": True, "AttachStdin": True,
                              "Cmd": "sh"}))
    assert s.privileged and s.user == "root" and s.tty and s.attach_stdin and s.cmd == ["sh"]
    assert not specs.from_exec(body({"Cmd": ["true"]})).privileged
    with pytest.raises(BodyError):
        specs.from_exec(body("1"))
    with pytest.raises(BodyError, match="privileged must be a boolean"):
        specs.from_exec(body({"Privileged": 1}))


def test_old_api_start_body_is_a_host_config():
    s = specs.from_host_config(body({"Privileged": True, "Binds": ["/etc:/x"], "CapAdd": "ALL"}))
    assert s.privileged and s.mounts[0].source == "/etc" and s.cap_add == ["ALL"]
    # or wrapped in "HostConfig", any key case (dockerd 20.10 decodes both, checked)
    for key in ("HostConfig", "hostconfig", "HOSTCONFIG", "Ho\u017ftConfig"):
        s = specs.from_host_config(body('{"%s": {"PidMode": "host", "Runtime": "runc"}}' % key))
        assert s.namespaces == {"pid": ["host"]} and s.runtime == "runc", key
    # top-level fields next to the object are ignored, as by dockerd
    assert specs.from_host_config(body({"PidMode": "host", "HostConfig": {}})).namespaces == {}
    with pytest.raises(BodyError):
        specs.from_host_config(body("null"))


def test_service():
    s = specs.from_service(body({"TaskTemplate": {
        "ContainerSpec": {
            "Image": "busybox", "Command": ["sh"], "User": "1", "Labels": {"a": "b"}, "TTY": True,
            "OpenStdin": True, "CapabilityAdd": ["CAP_SYS_ADMIN"],
            "Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/x"}],
            "Privileges": {"SELinuxContext": {"Disable": True}, "Seccomp": {"Mode": "unconfined"},
                           "AppArmor": {"Mode": "disabled"}},
            "Healthcheck": {"Test": ["NONE"], "Retries": 3},
        },
        "Networks": [{"Target": "host"}]},
        "Networks": [{"Target": "overlay1"}]}))
    assert s.image == "busybox" and s.cmd == ["sh"] and s.user == "1" and s.labels == {"a": "b"}
    assert s.tty and s.open_stdin and s.cap_add == ["CAP_SYS_ADMIN"]
    assert [(m.kind, m.source, m.origin) for m in s.mounts] == [("bind", "/etc", "service")]
    assert s.selinux_disabled
    assert "seccomp=unconfined" in s.security_opt and "apparmor=unconfined" in s.security_opt
    assert s.health_test == ["NONE"] and s.health_options == {"retries": 3}
    assert s.networks == ["host", "overlay1"]


def test_service_without_container_spec():
    s = specs.from_service(body({"Name": "x"}))
    assert s.mounts == [] and s.cap_add == []
    with pytest.raises(BodyError, match="TaskTemplate.containerspec must be an object"):
        specs.from_service(body({"TaskTemplate": {"ContainerSpec": []}}))
