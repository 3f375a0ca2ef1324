"""hook-spec: the dockguard.hook-spec label validated with hookbin's own checks at create."""
from __future__ import annotations

import json
import os

import pytest

from .helpers import FakeContext, allowed, create, create_problems, denied_by


@pytest.fixture
def root(tmp_path):
    """A Docker root with hooks/ holding a root-owned executable hook (tests run as root)."""
    r = tmp_path / "docker-root"
    (r / "hooks").mkdir(parents=True)
    prog = r / "hooks" / "noop-hook"
    prog.write_text("#!/bin/sh\nexit 0\n")
    prog.chmod(0o755)
    assert os.stat(prog).st_uid == 0, "the hook must be root-owned"
    return r


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


def test_good_spec(tmp_path, root):
    good = spec_file(tmp_path, "good.json", {"prestart": [hook(root)], "poststop": [hook(root)]})
    out = create(with_label(good), docker_root=str(root))
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
def test_bad_specs(tmp_path, root, over, what):
    bad = spec_file(tmp_path, "bad.json", {"prestart": [hook(root, **over)]})
    msg = denied_by(create(with_label(bad), docker_root=str(root)), "hook-spec")
    assert what in msg


def test_missing_keys_and_files(tmp_path, root):
    h = hook(root)
    del h["args"]
    bad = spec_file(tmp_path, "noargs.json", {"prestart": [h]})
    assert "args: missing" in denied_by(create(with_label(bad), docker_root=str(root)), "hook-spec")
    assert "cannot open hook-spec" in denied_by(create(with_label(str(tmp_path / "nope.json")),
                                                       docker_root=str(root)), "hook-spec")
    assert "empty value" in denied_by(create(with_label(""), docker_root=str(root)), "hook-spec")
    assert "must be absolute" in denied_by(create(with_label("rel.json"), docker_root=str(root)), "hook-spec")
    bad = spec_file(tmp_path, "broken.json", "{")
    assert "invalid JSON" in denied_by(create(with_label(bad), docker_root=str(root)), "hook-spec")


def test_hook_file_checks(tmp_path, root):
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
        assert what in denied_by(create(with_label(s), docker_root=str(root)), "hook-spec")


def test_spec_checked_against_this_daemons_root(tmp_path, root):
    good = spec_file(tmp_path, "good.json", {"prestart": [hook(root)]})
    msg = denied_by(create(with_label(good), docker_root="/var/lib/docker"), "hook-spec")
    assert "outside the hooks directory" in msg


def test_several_specs_in_one_label(tmp_path, root):
    a = spec_file(tmp_path, "a.json", {"prestart": [hook(root)]})
    b = spec_file(tmp_path, "b.json", {"poststop": [hook(root, timeout=500)]})
    allowed(create(with_label(a), docker_root=str(root)))
    msg = denied_by(create(with_label(f"{a},{b}"), docker_root=str(root)), "hook-spec")
    assert "500" in msg
    assert "empty entry" in denied_by(create(with_label(f"{a},"), docker_root=str(root)), "hook-spec")


def test_no_label_needs_no_lookup():
    out = create({"Image": "x", "Entrypoint": ["true"], "Labels": {"other": "x"}}, fail={"docker_root"})
    allowed(out)
    assert create_problems("hook-spec", {"Image": "x"}, ctx=FakeContext(fail={"docker_root"})) is None


def test_label_key_is_exact():
    assert create_problems("hook-spec", {"Image": "x", "Labels": {"Dockguard.Hook-Spec": "/nope"}}) is None
