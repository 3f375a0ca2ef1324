"""authz.localvol: a `local` volume's options read as the mount(2) dockerd makes of them."""
from __future__ import annotations

import pytest

from authz import localvol as lv


def judge(opts, types=(), servers=()):
    lo, problems = lv.read(opts)
    bad, paths = lv.judge(lo, frozenset(lv.BUILTIN_TYPES) | set(types), frozenset(servers))
    return problems + bad, paths


def test_read_keys_in_any_case_and_conflicts():
    lo, p = lv.read({"Type": "proc", "DEVICE": "proc", "o": "nosuid", "size": "1g", "other": "x"})
    assert (lo.type, lo.device, lo.o) == ("proc", "proc", "nosuid") and p == []
    lo, p = lv.read({"type": "tmpfs", "Type": "proc", "device": "x"})
    assert p == ["option 'type' given twice with different values"]
    assert lv.read({"type": "tmpfs", "TYPE": "tmpfs"})[1] == []
    assert lv.read(None)[0] == lv.LocalOpts()


@pytest.mark.parametrize("o,exact,like", [
    ("bind", True, True), ("rbind", True, True), ("ro,bind", True, True), ("remount,bind,ro", True, True),
    (" bind", False, True), ("BIND", False, True), ("bind=1", False, False), ("binds", False, False),
    ("", False, False), ("size=1m,mode=700", False, False),
])
def test_bind_is_read_as_moby_sys_mount_reads_it(o, exact, like):
    lo = lv.LocalOpts("tmpfs", "/etc", o)
    assert lo.bind is exact and lo.bind_like is like


def test_data_skips_flags():
    lo = lv.LocalOpts("overlay", "overlay", "ro,lowerdir=/a:/b,nosuid,,upperdir=/u,Workdir=/w,x")
    assert lo.data() == [("lowerdir", "/a:/b"), ("upperdir", "/u"), ("workdir", "/w"), ("x", "")]


@pytest.mark.parametrize("opts", [
    {}, {"size": "10g"},                                   # a plain volume (quota only)
    {"type": "tmpfs", "device": "tmpfs"}, {"type": "tmpfs", "device": "tmpfs", "o": "size=64m,uid=1000"},
    {"type": "tmpfs", "device": "/etc"},                   # tmpfs ignores its source name
    {"type": "none", "o": "bind", "device": "/etc"},       # a bind: judged by its path elsewhere
    {"type": "proc", "o": "rbind", "device": "/srv/x"},    # MS_BIND wins: a bind of /srv/x
])
def test_allowed_or_not_this_functions_business(opts):
    assert judge(opts) == ([], [])


@pytest.mark.parametrize("opts,what", [
    ({"type": "proc", "device": "proc"}, "type 'proc' shows the host kernel's own state"),
    ({"type": "sysfs", "device": "sysfs"}, "shows the host kernel's own state"),
    ({"type": "devtmpfs", "device": "devtmpfs"}, "shows the host kernel's own state"),
    ({"type": "cgroup2", "device": "cgroup2"}, "shows the host kernel's own state"),
    ({"type": "debugfs", "device": "debugfs"}, "shows the host kernel's own state"),
    ({"type": "mqueue", "device": "mqueue"}, "shows the host kernel's own state"),
    ({"type": "ext4", "device": "/dev/vda"}, "type 'ext4' is not an allowed volume type"),
    ({"type": "overlay", "device": "overlay", "o": "lowerdir=/etc:/tmp/x"}, "type 'overlay' is not an allowed"),
    ({"type": "none", "device": "/etc", "o": " bind"}, "type 'none' is not an allowed"),
    ({"device": "/dev/vda"}, "type '(none)' is not an allowed"),
    ({"type": "TMPFS", "device": "tmpfs"}, "type 'TMPFS' is not an allowed"),
    ({"type": "tmpfs", "TYPE": "proc", "device": "x"}, "option 'type' given twice"),
])
def test_refused_types(opts, what):
    problems, _ = judge(opts)
    assert problems and what in " ".join(problems), problems


def test_kernel_state_types_stay_refused_even_if_listed():
    problems, _ = judge({"type": "proc", "device": "proc"}, types={"proc"})
    assert "shows the host kernel's own state" in problems[0]


@pytest.mark.parametrize("opts", [
    {"type": "nfs", "device": ":/export", "o": "addr=10.0.0.5,vers=4"},
    {"type": "nfs", "device": "10.0.0.5:/export", "o": "addr=10.0.0.5"},
    {"type": "nfs4", "device": "nas.example:/export", "o": "addr=NAS.example"},
    {"type": "nfs", "device": "[fd00::5]:/export", "o": "addr=fd00::5"},
    {"type": "cifs", "device": "//nas.example/share", "o": "addr=10.0.0.5,username=u,password=p"},
    {"type": "cifs", "device": "\\\\10.0.0.5\\share"},
])
def test_network_volumes_to_listed_servers(opts):
    servers = {"10.0.0.5", "nas.example", "fd00::5"}
    assert judge(opts, servers=servers) == ([], [])
    problems, _ = judge(opts)  # nothing listed: refused
    assert "is not in the policy's volume_servers" in " ".join(problems)


@pytest.mark.parametrize("opts,what", [
    ({"type": "nfs", "device": "10.0.0.5:/export", "o": "addr=127.0.0.1"}, "server 127.0.0.1 is not in"),
    ({"type": "nfs", "device": "127.0.0.1:/", "o": "addr=10.0.0.5"}, "server 127.0.0.1 is not in"),
    ({"type": "nfs", "device": "10.0.0.5:/x", "o": "addr=10.0.0.5,mountaddr=127.0.0.1"}, "server 127.0.0.1"),
    ({"type": "nfs", "device": "/etc", "o": "addr=10.0.0.5"}, "is not a remote export"),
    ({"type": "nfs", "device": ":/export"}, "names no server"),
    ({"type": "cifs", "device": "/dev/vda"}, "is not a remote share"),
    ({"type": "cifs", "device": "//10.0.0.5/share", "o": "ip=127.0.0.1"}, "server 127.0.0.1"),
    ({"type": "cifs", "device": "//10.0.0.5/s", "o": "unc=//evil/s"}, "server evil"),
    ({"type": "cifs", "device": "//10.0.0.5/s", "o": "unc=/etc"}, "unc='/etc' is not a remote share"),
])
def test_network_volumes_elsewhere(opts, what):
    problems, _ = judge(opts, servers={"10.0.0.5"})
    assert problems and what in " ".join(problems), problems


def test_password_never_in_a_message():
    problems, _ = judge({"type": "cifs", "device": "//evil/s", "o": "username=u,password=hunter2"})
    assert "hunter2" not in " ".join(problems) and "password=********" in problems[0]


def test_operator_types_device_and_option_paths():
    ok = {"type": "overlay", "device": "overlay", "o": "lowerdir=/srv/a:/srv/b\\:c,upperdir=/srv/u,workdir=/srv/w"}
    assert judge(ok, types={"overlay"}) == ([], ["/srv/a", "/srv/b:c", "/srv/u", "/srv/w"])
    problems, paths = judge({"type": "overlay", "device": "overlay", "o": "lowerdir=etc"}, types={"overlay"})
    assert "relative path 'etc'" in problems[0] and paths == []
    problems, _ = judge({"type": "ramfs", "device": "/dev/vda"}, types={"ramfs"})
    assert "device '/dev/vda' is a host path" in problems[0]
    assert judge({"type": "ramfs", "device": "ramfs", "o": "x=a/b"}, types={"ramfs"})[0]  # relative, with a /
    assert judge({"type": "ramfs", "device": "ramfs", "o": "x=/a/b"}, types={"ramfs"}) == ([], ["/a/b"])


@pytest.mark.parametrize("types,errors", [
    (["overlay", "ramfs", "fuse.sshfs"], 0), (["proc"], 1), (["sysfs", "cgroup"], 2),
    (["Bad Type"], 1), ([""], 1), (["nfs"], 1),
])
def test_validate_types(types, errors):
    assert len(lv.validate_types(types)) == errors


@pytest.mark.parametrize("x,ok", [
    ("10.0.0.5", True), ("fd00::5", True), ("[fd00::5]", True), ("nas.example.com", True), ("nas", True),
    ("", False), (" nas", False), ("nas/x", False), ("a,b", False), ("-x", False), ("host:2049", False),
])
def test_valid_server(x, ok):
    assert lv.valid_server(x) is ok
