"""A hook-spec is a privilege the host grants (issue 7, hole 0): the trust walk, the spec's
location, the env allow-list, the shipped programs' arguments and the [hookspec] policy.

Pure checks over plain data first; then the same rules on real files in trusted directories.
"""
from __future__ import annotations

import json
import os
import stat

import pytest

from hookbin import policy as hp
from hookbin import spec as hs
from hookbin import trust
from hookbin.hooks import network_hook
from hookbin.policy import HookPolicy

from .conftest import write_exec

DIR, REG, LNK = stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK
POLICY = HookPolicy(spec_dirs=("/etc/docker/hookspecs",), network_interfaces=("eth1", "tap0"),
                    log_dir="/var/log/dockguard-hooks", lxcfs_roots=("/var/lib/lxcfs",))
FACTS = {"default_route_ifaces": frozenset({"eth0"})}


# --- the trust judge (pure) ---------------------------------------------------------------

def chain(*nodes):
    return [(p, uid, kind | mode) for p, uid, kind, mode in nodes]


def test_root_owned_chain_is_trusted():
    nodes = chain(("/", 0, DIR, 0o755), ("/etc", 0, DIR, 0o755), ("/etc/s.json", 0, REG, 0o644))
    assert trust.judge_chain(nodes) == []


@pytest.mark.parametrize("nodes, fault", [
    (chain(("/", 0, DIR, 0o755), ("/tmp", 0, DIR, 0o1777), ("/tmp/s.json", 0, REG, 0o644)),
     "/tmp is writable by group or others (mode 1777)"),
    (chain(("/", 0, DIR, 0o755), ("/srv", 65534, DIR, 0o755), ("/srv/s.json", 0, REG, 0o644)),
     "/srv is owned by uid 65534, not root"),
    (chain(("/", 0, DIR, 0o755), ("/srv", 0, DIR, 0o775), ("/srv/s.json", 0, REG, 0o644)),
     "/srv is writable by group or others (mode 0775)"),
    (chain(("/", 0, DIR, 0o755), ("/srv", 0, DIR, 0o755), ("/srv/s.json", 1000, REG, 0o644)),
     "/srv/s.json is owned by uid 1000, not root"),
    (chain(("/", 0, DIR, 0o755), ("/srv", 0, DIR, 0o755), ("/srv/s.json", 0, REG, 0o666)),
     "/srv/s.json is writable by group or others (mode 0666)"),
    (chain(("/", 0, DIR, 0o755), ("/srv", 0, LNK, 0o777), ("/srv/s.json", 0, REG, 0o644)),
     "/srv is a symlink"),
    (chain(("/", 0, DIR, 0o755), ("/srv", 0, REG, 0o755), ("/srv/s.json", 0, REG, 0o644)),
     "/srv is not a directory"),
    (chain(("/", 0, DIR, 0o755), ("/srv", 0, DIR, 0o755), ("/srv/fifo", 0, stat.S_IFIFO, 0o644)),
     "/srv/fifo is not a regular file"),
])
def test_untrusted_chains_name_the_component(nodes, fault):
    problems = trust.judge_chain(nodes)
    assert any(p.startswith(fault) for p in problems), problems


def test_within_compares_components():
    assert trust.within("/etc/docker/hookspecs/a.json", "/etc/docker/hookspecs")
    assert not trust.within("/etc/docker/hookspecsX/a.json", "/etc/docker/hookspecs")
    assert trust.within("/anything", "/")


# --- where a spec may lie (pure) ----------------------------------------------------------

@pytest.mark.parametrize("path, granted, fault", [
    ("/etc/docker/hookspecs/net.json", False, None),
    ("/etc/docker/hookspecs/sub/net.json", False, None),
    ("/etc/docker/hookspecsX/net.json", False, "must lie in a spec directory the host grants"),
    ("/opt/evil/s.json", False, "must lie in a spec directory the host grants"),
    ("/etc/docker/hookspecs", False, "must lie in a spec directory the host grants"),
    ("/etc/docker/hookspec.json", True, None),  # the daemon-wide spec, named by root
    ("/var/lib/docker/overlay2/abc/diff/s.json", True, "may not lie under Docker's root"),
    ("/var/lib/docker/volumes/v/_data/s.json", False, "may not lie under Docker's root"),
])
def test_spec_location(path, granted, fault):
    problems = hs.check_spec_location(path, "/var/lib/docker", POLICY, granted)
    if fault is None:
        assert problems == []
    else:
        assert len(problems) == 1 and fault in problems[0], problems


def test_empty_spec_dirs_still_keeps_docker_root_out():
    anywhere = HookPolicy(spec_dirs=())
    assert hs.check_spec_location("/opt/x/s.json", "/var/lib/docker", anywhere, False) == []
    assert hs.check_spec_location("/var/lib/docker/containers/c/s.json", "/var/lib/docker", anywhere, False)


# --- env: an allow-list, values checked (pure) ----------------------------------------------

@pytest.mark.parametrize("entry", [
    "LD_PRELOAD=/tmp/x/evil.so", "LD_LIBRARY_PATH=/tmp/x", "LD_AUDIT=/tmp/a.so", "PYTHONPATH=/tmp",
    "PYTHONSTARTUP=/tmp/s.py", "PERL5OPT=-Mevil", "PERL5LIB=/tmp", "RUBYOPT=-revil", "NODE_OPTIONS=--require /tmp/e",
    "BASH_ENV=/tmp/e.sh", "ENV=/tmp/e.sh", "IFS=/", "GCONV_PATH=/tmp", "HOME=/tmp", "SHELLOPTS=xtrace",
    "PS4=$(id)", "LOCPATH=/tmp", "MALLOC_CONF=x", "TMPDIR=/tmp", "XDG_CONFIG_HOME=/tmp", "FOO=bar",
    "ld_preload=/tmp/x.so",
])
def test_env_outside_the_allow_list_is_refused(entry):
    problems = hs.check_env([entry], POLICY, "prestart[0]")
    assert len(problems) == 1 and "is not on the allow-list" in problems[0], problems


@pytest.mark.parametrize("entry", [
    "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "LC_ALL=en_US.UTF-8", "TZ=Europe/Paris", "TZ=UTC",
    "TERM=xterm-256color",
])
def test_allowed_env(entry):
    assert hs.check_env([entry], POLICY, "prestart[0]") == []


@pytest.mark.parametrize("entry, fault", [
    ("PATH=/tmp/x:/usr/bin", "PATH may only name the system directories"),
    ("PATH=", "PATH may only name the system directories"),
    ("LANG=/tmp/x", "LANG must be a locale name"),
    ("LC_ALL=../../tmp/x", "LC_ALL must be a locale name"),
    ("TZ=/tmp/zone", "TZ must be a zone name"),
    ("TZ=:/etc/shadow", "TZ must be a zone name"),
    ("TZ=Europe/../../tmp/x", "TZ must be a zone name"),
    ("TERM=../x", "TERM must be a terminal name"),
])
def test_allowed_names_with_dangerous_values_are_refused(entry, fault):
    problems = hs.check_env([entry], POLICY, "prestart[0]")
    assert len(problems) == 1 and fault in problems[0], problems


def test_policy_may_add_its_own_names():
    pol = hp.from_section({"env_allow": ["MYHOOK_MODE"]})
    assert hs.check_env(["MYHOOK_MODE=fast"], pol, "p") == []
    assert "MYHOOK_MODE" in pol.env_allow and "PATH" in pol.env_allow


@pytest.mark.parametrize("name", ["LD_PRELOAD", "PYTHONPATH", "BASH_ENV", "ENV", "IFS", "GCONV_PATH", "PERL5OPT",
                                  "NODE_OPTIONS", "RUBYOPT", "ld_preload", "HOME"])
def test_policy_can_never_allow_loader_or_interpreter_variables(name):
    with pytest.raises(hp.PolicyError, match="may not allow"):
        hp.from_section({"env_allow": [name]})


# --- the shipped programs' arguments (pure) -----------------------------------------------

@pytest.mark.parametrize("program, argv, fault", [
    ("network-hook", ["eth1", "myTap"], None),
    ("network-hook", ["eth2", "myTap"], "eth2 is not an interface the policy lets network-hook move"),
    ("network-hook", ["eth0", "myTap"], "eth0 carries a default route of the host"),
    ("network-hook", ["lo", "x"], "the loopback interface is never moved"),
    ("network-hook", ["eth1"], "expected 2 arguments"),
    ("network-hook", ["eth1/..", "x"], "is not a valid interface name"),
    ("docker-hooks", ["--state", "prestart"], None),
    ("docker-hooks", ["--state", "prestart", "--log", "/var/log/dockguard-hooks/a.log"], None),
    ("docker-hooks", ["--state", "prestart", "--log", "/etc/sudoers"], "must be a file directly in /var/log/dockguard-hooks"),
    ("docker-hooks", ["--state", "prestart", "--log=/etc/ld.so.preload"], "must be a file directly in"),
    ("docker-hooks", ["--state", "prestart", "--log", "/var/log/dockguard-hooks/../../../etc/passwd"], "must be a file directly in"),
    ("docker-hooks", ["--state", "prestart", "--log", "/var/log/dockguard-hooks/sub/a.log"], "must be a file directly in"),
    ("docker-hooks", ["--state", "prestart", "--log", "/var/log/dockguard-hooks/"], "must be a file directly in"),
    ("docker-hooks", ["--state", "later"], "--state must be one of"),
    ("lxcfs-hook", [], None),
    ("lxcfs-hook", ["--log", "/var/log/dockguard-hooks/lx.log"], None),
    ("lxcfs-hook", ["--log", "/etc/cron.d/x"], "must be a file directly in"),
    ("lxcfs-hook", ["--lxcfs-root", "/etc"], "--lxcfs-root '/etc' is not one the policy lists"),
    ("my-own-hook", ["--anything", "/etc/shadow"], None),  # the operator's program: its own business
])
def test_program_args(program, argv, fault):
    problems = hs.check_program_args(program, argv, POLICY, FACTS, "prestart[0]")
    if fault is None:
        assert problems == []
    else:
        assert problems and all(p.startswith(f"prestart[0].args: {program}: ") for p in problems)
        assert any(fault in p for p in problems), problems


def test_default_policy_moves_no_interface_and_logs_in_one_dir():
    assert hs.check_program_args("network-hook", ["eth1", "x"], hp.DEFAULT, {}, "p")
    assert hp.DEFAULT.log_dir == "/var/log/dockguard-hooks"
    assert hp.DEFAULT.spec_dirs == ("/etc/docker/hookspecs",)


def test_default_routes_from_proc():
    route = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
             "eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
             "eth1\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
    route6 = ("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
              "fe800000000000000000000000000001 00000400 00000001 00000000 00000003 wlan0\n"
              "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
              "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n")
    assert network_hook.parse_default_routes(route, route6) == {"eth0", "wlan0"}


# --- the policy section ---------------------------------------------------------------------

@pytest.mark.parametrize("section, fault", [
    ({"spec_dir": ["/x"]}, "unknown key hookspec.spec_dir"),
    ({"spec_dirs": "/x"}, "must be a list of strings"),
    ({"spec_dirs": ["rel"]}, "must be an absolute path"),
    ({"log_dir": "/"}, "may not be /"),
    ({"log_dir": 3}, "must be a string"),
    ({"network_interfaces": ["lo"]}, "is not an interface network-hook may move"),
    ({"network_interfaces": ["a/b"]}, "is not an interface"),
    ({"env_allow": ["1X"]}, "is not a variable name"),
])
def test_bad_policy_sections(section, fault):
    with pytest.raises(hp.PolicyError, match=fault.replace(".", r"\.").replace("[", r"\[")):
        hp.from_section(section, "p.toml")


def test_policy_file_must_be_roots_alone_and_valid(trusted, tmp_path):
    good = trusted / "p.toml"
    good.write_text('[hookspec]\nnetwork_interfaces = ["eth1"]\n[rules]\nprivileged = "deny"\n')
    assert hp.load(str(good)).network_interfaces == {"eth1"}
    loose = tmp_path / "p.toml"
    loose.write_text(good.read_text())
    with pytest.raises(hp.PolicyError, match="writable by group or others"):
        hp.load(str(loose))
    bad = trusted / "bad.toml"
    bad.write_text("[hookspec\n")
    with pytest.raises(hp.PolicyError, match="is not valid TOML"):
        hp.load(str(bad))
    with pytest.raises(hp.PolicyError, match="cannot be resolved"):
        hp.load(str(trusted / "missing.toml"))


# --- on real files: the walk -----------------------------------------------------------------

def spec_doc(root, **over):
    h = {"path": str(root / "hooks" / "ok-hook"), "args": ["ok-hook"], "env": [], "timeout": 5}
    h.update(over)
    return {"prestart": [h]}


def write(path, doc):
    path.write_text(json.dumps(doc))
    return str(path)


def test_trusted_spec_in_spec_dir_is_accepted(spec_dir, docker_root, policy):
    assert hs.check_label(write(spec_dir / "s.json", spec_doc(docker_root)), str(docker_root), policy) == []


def test_world_writable_spec_in_tmp_is_refused(tmp_path, docker_root):
    path = write(tmp_path / "s.json", spec_doc(docker_root))
    os.chmod(path, 0o666)
    os.chown(path, 65534, 65534)
    anywhere = HookPolicy(spec_dirs=())
    (problem,) = hs.check_label(path, str(docker_root), anywhere)
    assert "hook-spec is not trusted: /tmp is writable by group or others (mode 1777)" in problem


def test_spec_in_a_directory_owned_by_nobody_is_refused(spec_dir, docker_root, policy):
    theirs = spec_dir / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 65534, 65534)
    path = write(theirs / "s.json", spec_doc(docker_root))
    (problem,) = hs.check_label(path, str(docker_root), policy)
    assert f"{theirs} is owned by uid 65534, not root" in problem


@pytest.mark.parametrize("mode, owner, fault", [
    (0o664, 0, "writable by group or others (mode 0664)"),
    (0o644, 65534, "owned by uid 65534, not root"),
])
def test_spec_file_itself_must_be_roots_alone(spec_dir, docker_root, policy, mode, owner, fault):
    path = write(spec_dir / "s.json", spec_doc(docker_root))
    os.chmod(path, mode)
    os.chown(path, owner, 0)
    (problem,) = hs.check_label(path, str(docker_root), policy)
    assert fault in problem


def test_symlink_into_an_untrusted_place_is_judged_where_it_leads(spec_dir, docker_root, policy, tmp_path):
    real = write(tmp_path / "s.json", spec_doc(docker_root))
    os.symlink(real, spec_dir / "link.json")
    (problem,) = hs.check_label(str(spec_dir / "link.json"), str(docker_root), policy)
    assert "resolves outside the spec directories the host grants" in problem
    assert real not in problem, "where a path leads is not the client's business"


def test_a_path_outside_spec_dirs_tells_nothing_about_the_host(docker_root, policy):
    for path in ("/root/.ssh/id_rsa", "/nonexistent/x.json", "/etc/shadow"):
        (problem,) = hs.check_label(path, str(docker_root), policy)
        assert problem.startswith(f"{path}: a container's hook-spec must lie in a spec directory"), problem


def test_a_granted_spec_is_named_by_its_granted_path(spec_dir, docker_root, policy, tmp_path):
    """Both the path as given and the path it resolves to must be in a spec directory."""
    good = write(spec_dir / "s.json", spec_doc(docker_root))
    os.symlink(good, tmp_path / "link.json")
    (problem,) = hs.check_label(str(tmp_path / "link.json"), str(docker_root), policy)
    assert "must lie in a spec directory the host grants" in problem
    os.symlink(good, spec_dir / "alias.json")
    assert hs.check_label(str(spec_dir / "alias.json"), str(docker_root), policy) == []


def test_spec_with_ld_preload_env_is_refused(spec_dir, docker_root, policy):
    path = write(spec_dir / "s.json", spec_doc(docker_root, env=["LD_PRELOAD=/tmp/x/evil.so"]))
    (problem,) = hs.check_label(path, str(docker_root), policy)
    assert "prestart[0].env[0]: LD_PRELOAD is not on the allow-list" in problem


def test_shipped_program_args_checked_in_a_spec(spec_dir, docker_root, policy):
    write_exec(docker_root / "hooks" / "docker-hooks", "#!/bin/sh\n")
    path = write(spec_dir / "s.json", spec_doc(docker_root, path=str(docker_root / "hooks" / "docker-hooks"),
                                               args=["docker-hooks", "--state", "prestart", "--log", "/etc/x"]))
    (problem,) = hs.check_label(path, str(docker_root), policy)
    assert "prestart[0].args: docker-hooks: log '/etc/x' must be a file directly in" in problem


def test_shipped_program_recognised_through_a_symlink(spec_dir, docker_root, policy):
    write_exec(docker_root / "hooks" / "network-hook", "#!/bin/sh\n")
    os.symlink("network-hook", docker_root / "hooks" / "nh")
    path = write(spec_dir / "s.json", spec_doc(docker_root, path=str(docker_root / "hooks" / "nh"),
                                               args=["nh", "eth0", "x"]))
    (problem,) = hs.check_label(path, str(docker_root), policy)
    assert "network-hook: eth0" in problem


def test_hook_directory_chain_is_checked(spec_dir, docker_root, policy):
    os.chmod(docker_root, 0o777)
    try:
        path = write(spec_dir / "s.json", spec_doc(docker_root))
        (problem,) = hs.check_label(path, str(docker_root), policy)
    finally:
        os.chmod(docker_root, 0o755)
    assert f"{docker_root} is writable by group or others (mode 0777)" in problem


def test_hook_paths_are_pinned_to_what_they_resolve_to(spec_dir, docker_root, policy, tmp_path):
    """A symlink in a hook's given path could be swapped after the check: runc gets the target."""
    link = tmp_path / "hooks-link"
    os.symlink(docker_root / "hooks", link)
    path = write(spec_dir / "s.json", spec_doc(docker_root, path=str(link / "ok-hook")))
    merged = hs.load_specs([path], str(docker_root), policy)
    assert merged["prestart"][0]["path"] == str(docker_root / "hooks" / "ok-hook")


def test_open_trusted_reads_the_file_it_judged(spec_dir):
    path = spec_dir / "x"
    path.write_text("hello")
    fd, resolved = trust.open_trusted(str(path))
    try:
        os.rename(path, spec_dir / "moved")
        (spec_dir / "x").write_text("swapped")
        assert os.read(fd, 100) == b"hello" and resolved == str(path)
    finally:
        os.close(fd)


def test_walk_refuses_a_symlink_swapped_in_after_resolution(spec_dir, tmp_path):
    (spec_dir / "d").mkdir()
    (spec_dir / "d" / "f").write_text("x")
    resolved = trust.resolve(str(spec_dir / "d" / "f"))
    os.rename(spec_dir / "d", spec_dir / "d.old")
    os.symlink(spec_dir / "d.old", spec_dir / "d")
    with pytest.raises(trust.Untrusted, match="changed while being checked"):
        trust.walk(resolved)
