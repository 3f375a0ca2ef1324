"""hook-spec: the dockguard.hook-spec label validated with hookbin's own checks at create,
on the labels the container will really have (the image's merged under the request's), by
the policy's [hookspec] section (a hook-spec is a privilege the host grants)."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil

import pytest

from hookbin.policy import HookPolicy
from tests.hookbin.conftest import trusted_tmpdir

from .helpers import FakeContext, allowed, create, create_problems, default_policy, denied_by


@pytest.fixture
def base(request):
    b = trusted_tmpdir("ah")
    request.addfinalizer(lambda: shutil.rmtree(b, ignore_errors=True))
    return b


@pytest.fixture
def tmp_path(base):
    """Specs go in the policy's spec directory (root's alone), not pytest's /tmp."""
    d = base / "specs"
    d.mkdir(mode=0o755)
    return d


@pytest.fixture
def root(base):
    """A Docker root with hooks/ holding a root-owned executable hook (tests run as root)."""
    r = base / "docker-root"
    (r / "hooks").mkdir(parents=True)
    prog = r / "hooks" / "noop-hook"
    prog.write_text("#!/bin/sh\nexit 0\n")
    prog.chmod(0o755)
    assert os.stat(prog).st_uid == 0, "the hook must be root-owned"
    return r


def ctx_for(base, root, **kw):
    """A context whose policy grants base/specs, and whose daemon has Docker root `root`."""
    lists = dataclasses.replace(default_policy().lists,
                                hookspec=HookPolicy(spec_dirs=(str(base / "specs"),), log_dir=str(base / "logs")))
    return FakeContext(lists=lists, docker_root=str(root), **kw)


def create_in(base, root, body, **kw):
    return create(body, ctx=ctx_for(base, root, **kw))


def spec_file(tmp_path, name, doc):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(p)


def hook(root, **over):
    h = {"path": str(root / "hooks" / "noop-hook"), "args": ["noop-hook"], "env": [], "timeout": 5}
    h.update(over)
    return h


def with_label(value):
    return {"Image": "x", "Cmd": ["true"], "Labels": {"dockguard.hook-spec": value}}


def test_good_spec(base, tmp_path, root):
    good = spec_file(tmp_path, "good.json", {"prestart": [hook(root)], "poststop": [hook(root)]})
    out = create_in(base, root, with_label(good))
    allowed(out)
    assert ("docker_root",) in out.ctx.calls


@pytest.mark.parametrize("over,what", [
    ({"timeout": 121}, "121 is out of range"),
    ({"timeout": 0}, "out of range"),
    ({"timeout": 1.5}, "a float"),
    ({"path": "/bin/true"}, "is outside the hooks directory"),
    ({"path": "hooks/noop-hook"}, "is not an absolute path"),
    ({"env": ["NOEQUALS"]}, "is not KEY=VALUE"),
    ({"bogus": 1}, "unknown field 'bogus'"),
])
def test_bad_specs(base, tmp_path, root, over, what):
    bad = spec_file(tmp_path, "bad.json", {"prestart": [hook(root, **over)]})
    msg = denied_by(create_in(base, root, with_label(bad)), "hook-spec")
    assert what in msg


def test_missing_keys_and_files(base, tmp_path, root):
    h = hook(root)
    del h["args"]
    bad = spec_file(tmp_path, "noargs.json", {"prestart": [h]})
    assert "args: missing" in denied_by(create_in(base, root, with_label(bad)), "hook-spec")
    assert "cannot open hook-spec" in denied_by(create_in(base, root, with_label(str(tmp_path / "nope.json"))), "hook-spec")
    assert "empty value" in denied_by(create_in(base, root, with_label("")), "hook-spec")
    assert "must be absolute" in denied_by(create_in(base, root, with_label("rel.json")), "hook-spec")
    bad = spec_file(tmp_path, "broken.json", "{")
    assert "invalid JSON" in denied_by(create_in(base, root, with_label(bad)), "hook-spec")


def test_hook_file_checks(base, tmp_path, root):
    loose = root / "hooks" / "loose-hook"
    loose.write_text("#!/bin/sh\n")
    loose.chmod(0o777)
    noexec = root / "hooks" / "noexec-hook"
    noexec.write_text("#!/bin/sh\n")
    noexec.chmod(0o644)
    os.symlink("/bin/true", root / "hooks" / "escape")
    for path, what in ((loose, "writable by group or others"), (noexec, "is not executable"),
                       (root / "hooks" / "escape", "outside the hooks directory")):
        s = spec_file(tmp_path, "s.json", {"prestart": [hook(root, path=str(path))]})
        assert what in denied_by(create_in(base, root, with_label(s)), "hook-spec")


def test_spec_checked_against_this_daemons_root(base, tmp_path, root):
    good = spec_file(tmp_path, "good.json", {"prestart": [hook(root)]})
    msg = denied_by(create(with_label(good), ctx=ctx_for(base, "/var/lib/docker")), "hook-spec")
    assert "outside the hooks directory" in msg


def test_several_specs_in_one_label(base, tmp_path, root):
    a = spec_file(tmp_path, "a.json", {"prestart": [hook(root)]})
    b = spec_file(tmp_path, "b.json", {"poststop": [hook(root, timeout=500)]})
    allowed(create_in(base, root, with_label(a)))
    msg = denied_by(create_in(base, root, with_label(f"{a},{b}")), "hook-spec")
    assert "500" in msg
    assert "empty entry" in denied_by(create_in(base, root, with_label(f"{a},")), "hook-spec")


def test_no_label_needs_no_lookup():
    out = create({"Image": "x", "Entrypoint": ["true"], "Labels": {"other": "x"}}, fail={"docker_root"})
    allowed(out)
    assert create_problems("hook-spec", {"Image": "x"}, ctx=FakeContext(fail={"docker_root"})) is None


def test_label_key_is_exact():
    assert create_problems("hook-spec", {"Image": "x", "Labels": {"Dockguard.Hook-Spec": "/nope"}}) is None


# --- a privilege the host grants (issue 7, hole 0) ------------------------------------------

def test_built_in_policy_grants_only_etc_docker_hookspecs(base, tmp_path, root):
    good = spec_file(tmp_path, "good.json", {"prestart": [hook(root)]})
    msg = denied_by(create(with_label(good), docker_root=str(root)), "hook-spec")
    assert "must lie in a spec directory the host grants (/etc/docker/hookspecs" in msg


def test_world_writable_spec_in_tmp_is_refused(base, root):
    import tempfile
    d = tempfile.mkdtemp(dir="/tmp")
    try:
        os.chmod(d, 0o777)
        evil = os.path.join(d, "evil.json")
        with open(evil, "w") as f:
            json.dump({"prestart": [hook(root, env=["LD_PRELOAD=/tmp/x/evil.so"])]}, f)
        os.chmod(evil, 0o666)
        os.chown(evil, 65534, 65534)
        msg = denied_by(create_in(base, root, with_label(evil)), "hook-spec")
        assert "must lie in a spec directory the host grants" in msg and "Safely:" in msg
    finally:
        shutil.rmtree(d)


def test_ld_preload_env_is_refused_even_in_a_granted_spec(base, tmp_path, root):
    s = spec_file(tmp_path, "s.json", {"prestart": [hook(root, env=["LD_PRELOAD=/tmp/x/evil.so", "PATH=/usr/bin"])]})
    msg = denied_by(create_in(base, root, with_label(s)), "hook-spec")
    assert "env[0]: LD_PRELOAD is not on the allow-list" in msg and "env[1]" not in msg


def test_shipped_programs_arguments_judged_by_the_policy(base, tmp_path, root):
    for name in ("docker-hooks", "network-hook"):
        p = root / "hooks" / name
        p.write_text("#!/bin/sh\n")
        p.chmod(0o755)
    s = spec_file(tmp_path, "s.json", {"prestart": [
        hook(root, path=str(root / "hooks" / "docker-hooks"), args=["docker-hooks", "--state", "prestart", "--log", "/etc/sudoers"]),
        hook(root, path=str(root / "hooks" / "network-hook"), args=["network-hook", "eth0", "x0"])]})
    msg = denied_by(create_in(base, root, with_label(s)), "hook-spec")
    assert "prestart[0].args: docker-hooks: log '/etc/sudoers' must be a file directly in" in msg
    assert "prestart[1].args: network-hook: eth0" in msg


# --- labels as dockerd merges them: the image's under the request's -------------------------

def test_image_label_is_judged(base, tmp_path, root):
    bad = spec_file(tmp_path, "bad.json", {"prestart": [hook(root, timeout=0)]})
    images = {"imported": {"Labels": {"dockguard.hook-spec": bad}}}
    out = create_in(base, root, {"Image": "imported", "Cmd": ["true"]}, image_configs=images)
    msg = denied_by(out, "hook-spec")
    assert f"image label: {bad}: prestart[0].timeout" in msg
    assert ("image_config", "imported") in out.ctx.calls


def test_request_label_overrides_the_image_label(base, tmp_path, root):
    bad = spec_file(tmp_path, "bad.json", {"prestart": [hook(root, timeout=0)]})
    good = spec_file(tmp_path, "good.json", {"prestart": [hook(root)]})
    images = {"imported": {"Labels": {"dockguard.hook-spec": bad}}}
    body = {"Image": "imported", "Cmd": ["true"], "Labels": {"dockguard.hook-spec": good}}
    allowed(create_in(base, root, body, image_configs=images))


def test_failed_image_lookup_denies(base, root):
    out = create_in(base, root, {"Image": "imported", "Cmd": ["true"]}, fail={"image_config"})
    assert not out.allow and "could not look up image_config" in out.msg


def test_image_without_the_label_needs_no_root_lookup(base, root):
    out = create_in(base, root, {"Image": "plain", "Cmd": ["true"]}, image_configs={"plain": {"Labels": None}},
                    fail={"docker_root"})
    allowed(out)


def test_service_label_is_judged_too(base, tmp_path, root):
    bad = spec_file(tmp_path, "bad.json", {"prestart": [hook(root, timeout=0)]})
    from .helpers import decide
    body = {"Name": "s", "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Labels": {"dockguard.hook-spec": bad}}}}
    out = decide("POST", "/v1.41/services/create", body, ctx=ctx_for(base, root))
    assert "timeout" in denied_by(out, "hook-spec")
