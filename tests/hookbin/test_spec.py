"""hookbin.spec: the guide's hook-spec rules, merge, and the label check authz uses."""
from __future__ import annotations

import json
import os

import pytest

from hookbin import spec as hs

from .conftest import write_exec


@pytest.fixture(autouse=True)
def _policy(as_default_policy):
    """Every check here judges by a policy granting `spec_dir` (test_trust.py covers the
    built-in default's /etc/docker/hookspecs)."""


def good_hook(root, **over):
    h = {"path": str(root / "hooks" / "ok-hook"), "args": ["ok-hook"], "env": [], "timeout": 5}
    h.update(over)
    return h


def write(path, doc):
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def problems_for(spec_dir, docker_root, doc) -> list[str]:
    return hs.check_label(write(spec_dir / "s.json", doc), str(docker_root))


def test_good_spec_loads_and_normalizes(spec_dir, docker_root):
    path = write(spec_dir / "s.json", {"prestart": [good_hook(docker_root)], "poststop": None})
    spec = hs.load_spec(path, str(docker_root))
    assert spec == {"prestart": [good_hook(docker_root)], "poststart": [], "poststop": []}
    assert hs.check_label(path, str(docker_root)) == []


def test_guide_example_shape_is_accepted(spec_dir, docker_root):
    doc = {"prestart": [{"path": str(docker_root / "hooks" / "ok-hook"),
                         "args": ["network-hook", "tap0", "myTap"], "env": [], "timeout": 5}],
           "poststart": [], "poststop": []}
    assert problems_for(spec_dir, docker_root, doc) == []


@pytest.mark.parametrize("timeout, fault", [
    (0, "prestart[0].timeout: 0 is out of range [1, 120]"),
    (121, "prestart[0].timeout: 121 is out of range [1, 120]"),
    (1.5, "prestart[0].timeout: must be an integer in [1, 120] (got a float: 1.5)"),
    (5.0, "prestart[0].timeout: must be an integer in [1, 120] (got a float: 5.0)"),
    ("5", 'prestart[0].timeout: must be an integer in [1, 120] (got a string: "5")'),
    (True, "prestart[0].timeout: must be an integer in [1, 120] (got a boolean: true)"),
    (None, "prestart[0].timeout: must be an integer in [1, 120] (got null)"),
])
def test_bad_timeouts_are_refused(spec_dir, docker_root, timeout, fault):
    problems = problems_for(spec_dir, docker_root, {"prestart": [good_hook(docker_root, timeout=timeout)]})
    assert problems == [f"{spec_dir / 's.json'}: {fault}"]


@pytest.mark.parametrize("timeout", [1, 120])
def test_timeout_bounds_are_inclusive(spec_dir, docker_root, timeout):
    assert problems_for(spec_dir, docker_root, {"poststop": [good_hook(docker_root, timeout=timeout)]}) == []


def test_timeout_is_optional(spec_dir, docker_root):
    h = good_hook(docker_root)
    del h["timeout"]
    assert problems_for(spec_dir, docker_root, {"poststart": [h]}) == []


@pytest.mark.parametrize("field", ["path", "args", "env"])
def test_missing_required_field_is_named(spec_dir, docker_root, field):
    h = good_hook(docker_root)
    del h[field]
    problems = problems_for(spec_dir, docker_root, {"prestart": [h]})
    assert any(f"prestart[0].{field}: missing" in p for p in problems), problems


@pytest.mark.parametrize("over, fault", [
    ({"path": "hooks/ok-hook"}, "prestart[0].path: 'hooks/ok-hook' is not an absolute path"),
    ({"path": ""}, "prestart[0].path: must be a non-empty string"),
    ({"args": "ok-hook"}, "prestart[0].args: must be a list of strings"),
    ({"args": ["a", 1]}, "prestart[0].args: must be a list of strings"),
    ({"env": ["NOEQUALS"]}, "prestart[0].env[0]: 'NOEQUALS' is not KEY=VALUE"),
    ({"timout": 5}, "prestart[0]: unknown field 'timout'"),
])
def test_bad_fields_are_named(spec_dir, docker_root, over, fault):
    problems = problems_for(spec_dir, docker_root, {"prestart": [good_hook(docker_root, **over)]})
    assert any(fault in p for p in problems), problems


@pytest.mark.parametrize("doc, fault", [
    ([], "a hook-spec must be a JSON object"),
    ({"prestrat": []}, "unknown key 'prestrat'"),
    ({"prestart": {}}, "prestart: must be a list of hooks"),
    ({"poststop": ["x"]}, "poststop[0]: must be an object"),
])
def test_bad_shape_is_named(spec_dir, docker_root, doc, fault):
    problems = problems_for(spec_dir, docker_root, doc)
    assert any(fault in p for p in problems), problems


def test_syntax_error_names_file_line_and_column(spec_dir, docker_root):
    path = write(spec_dir / "s.json", '{\n  "prestart": [\n    {"path": "/x",}\n  ]\n}\n')
    problems = hs.check_label(path, str(docker_root))
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:3:19: invalid JSON")


def test_nan_is_not_json(spec_dir, docker_root):
    problems = problems_for(spec_dir, docker_root, '{"prestart": [{"path": "/x", "args": [], "env": [], "timeout": NaN}]}')
    assert problems and "NaN is not valid JSON" in problems[0]


def test_symlink_escaping_hooks_dir_is_refused(spec_dir, docker_root):
    os.symlink("/bin/true", docker_root / "hooks" / "escape")
    problems = problems_for(spec_dir, docker_root, {"prestart": [good_hook(docker_root, path=str(docker_root / "hooks" / "escape"))]})
    assert len(problems) == 1
    assert "(resolves to '/usr/bin/true')" in problems[0] or "(resolves to '/bin/true')" in problems[0]
    assert "is outside the hooks directory" in problems[0]


def test_symlink_within_hooks_dir_is_fine(spec_dir, docker_root):
    os.symlink("ok-hook", docker_root / "hooks" / "alias")
    assert problems_for(spec_dir, docker_root, {"prestart": [good_hook(docker_root, path=str(docker_root / "hooks" / "alias"))]}) == []


def test_hooksX_sibling_is_refused(spec_dir, docker_root):
    """openEuler's check is a string prefix; ours compares path components."""
    (docker_root / "hooksX").mkdir()
    sibling = write_exec(docker_root / "hooksX" / "evil", "#!/bin/sh\n")
    problems = problems_for(spec_dir, docker_root, {"prestart": [good_hook(docker_root, path=str(sibling))]})
    assert len(problems) == 1 and "is outside the hooks directory" in problems[0], problems


def test_dotdot_out_of_hooks_is_refused(spec_dir, docker_root):
    write_exec(docker_root / "outside", "#!/bin/sh\n")
    path = str(docker_root / "hooks" / ".." / "outside")
    problems = problems_for(spec_dir, docker_root, {"prestart": [good_hook(docker_root, path=path)]})
    assert len(problems) == 1 and "is outside the hooks directory" in problems[0], problems


def test_hooks_dir_itself_is_not_a_hook(spec_dir, docker_root):
    problems = problems_for(spec_dir, docker_root, {"prestart": [good_hook(docker_root, path=str(docker_root / "hooks"))]})
    assert len(problems) == 1 and "outside the hooks directory" in problems[0]


def test_missing_hook_program_is_refused(spec_dir, docker_root):
    problems = problems_for(spec_dir, docker_root, {"prestart": [good_hook(docker_root, path=str(docker_root / "hooks" / "nope"))]})
    assert len(problems) == 1 and "cannot be resolved: No such file or directory" in problems[0]


def test_non_executable_is_refused(spec_dir, docker_root):
    write_exec(docker_root / "hooks" / "noexec", "#!/bin/sh\n", mode=0o644)
    problems = problems_for(spec_dir, docker_root, {"prestart": [good_hook(docker_root, path=str(docker_root / "hooks" / "noexec"))]})
    assert len(problems) == 1 and "is not executable (mode 0644)" in problems[0]


def test_group_writable_is_refused(spec_dir, docker_root):
    write_exec(docker_root / "hooks" / "gw", "#!/bin/sh\n", mode=0o775)
    problems = problems_for(spec_dir, docker_root, {"prestart": [good_hook(docker_root, path=str(docker_root / "hooks" / "gw"))]})
    assert len(problems) == 1 and "writable by group or others (mode 0775)" in problems[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_not_owned_by_root_is_refused(spec_dir, docker_root):
    p = write_exec(docker_root / "hooks" / "theirs", "#!/bin/sh\n")
    os.chown(p, 65534, 65534)
    problems = problems_for(spec_dir, docker_root, {"prestart": [good_hook(docker_root, path=str(p))]})
    assert len(problems) == 1 and "owned by uid 65534, not root" in problems[0]


def test_directory_in_hooks_is_not_a_regular_file(spec_dir, docker_root):
    (docker_root / "hooks" / "sub").mkdir()
    problems = problems_for(spec_dir, docker_root, {"prestart": [good_hook(docker_root, path=str(docker_root / "hooks" / "sub"))]})
    assert len(problems) == 1 and "is not a regular file" in problems[0]


def test_all_faults_reported_together(spec_dir, docker_root):
    doc = {"prestart": [good_hook(docker_root, timeout=0)], "poststop": [good_hook(docker_root, path="rel")]}
    problems = problems_for(spec_dir, docker_root, doc)
    assert len(problems) == 2
    assert "prestart[0].timeout" in problems[0] and "poststop[0].path" in problems[1]


def test_spec_file_must_be_absolute_regular_and_small(spec_dir, docker_root):
    assert hs.check_label("rel/spec.json", str(docker_root)) == ["rel/spec.json: hook-spec path must be absolute"]
    (spec_dir / "sub").mkdir()
    (problem,) = hs.check_label(str(spec_dir / "sub"), str(docker_root))
    assert problem.startswith(f"{spec_dir / 'sub'}: hook-spec is not trusted: ") and "is not a regular file" in problem
    missing = str(spec_dir / "missing.json")
    assert hs.check_label(missing, str(docker_root)) == [
        f"{missing}: cannot open hook-spec: {missing} cannot be resolved: No such file or directory"]
    big = spec_dir / "big.json"
    big.write_text(" " * (hs.MAX_SPEC_BYTES + 1) + "{}")
    assert "more than" in hs.check_label(str(big), str(docker_root))[0]


def test_spec_file_fifo_does_not_hang(spec_dir, docker_root):
    fifo = spec_dir / "fifo.json"
    os.mkfifo(fifo)
    (problem,) = hs.check_label(str(fifo), str(docker_root))
    assert problem.startswith(f"{fifo}: hook-spec is not trusted: ") and f"{fifo} is not a regular file" in problem


def test_label_with_several_specs_merges_in_order(spec_dir, docker_root):
    a = write(spec_dir / "a.json", {"prestart": [good_hook(docker_root, args=["a1"]), good_hook(docker_root, args=["a2"])]})
    b = write(spec_dir / "b.json", {"prestart": [good_hook(docker_root, args=["b1"])], "poststop": [good_hook(docker_root, args=["b2"])]})
    merged = hs.load_specs(hs.split_label(f"{a}, {b}"), str(docker_root))
    assert [h["args"] for h in merged["prestart"]] == [["a1"], ["a2"], ["b1"]]
    assert [h["args"] for h in merged["poststop"]] == [["b2"]]
    assert merged["poststart"] == []
    assert hs.check_label(f"{a},{b}", str(docker_root)) == []


def test_label_faults_from_every_file(spec_dir, docker_root):
    a = write(spec_dir / "a.json", {"prestart": [good_hook(docker_root, timeout=121)]})
    b = write(spec_dir / "b.json", "{")
    problems = hs.check_label(f"{a},{b}", str(docker_root))
    assert len(problems) == 2 and problems[0].startswith(a) and problems[1].startswith(f"{b}:1:2: invalid JSON")


@pytest.mark.parametrize("value", ["", "  ", "/a.json,", ",/a.json", "/a.json,,/b.json"])
def test_label_with_empty_entries_is_refused(value, docker_root):
    problems = hs.check_label(value, str(docker_root))
    assert len(problems) == 1 and "label dockguard.hook-spec: empty" in problems[0]


def test_merge_is_pure_and_ordered():
    a = {"prestart": [{"path": "/h/a", "args": [], "env": []}], "poststart": [], "poststop": []}
    b = {"prestart": [{"path": "/h/b", "args": [], "env": []}]}
    merged = hs.merge([a, b])
    assert [h["path"] for h in merged["prestart"]] == ["/h/a", "/h/b"]
    merged["prestart"][0]["path"] = "changed"
    assert a["prestart"][0]["path"] == "/h/a"
    assert hs.is_empty(hs.merge([])) and not hs.is_empty(merged)


def test_hooks_dir_resolution_follows_a_symlinked_docker_root(spec_dir, docker_root):
    link = spec_dir / "rootlink"
    os.symlink(docker_root, link)
    path = write(spec_dir / "s.json", {"prestart": [good_hook(docker_root, path=str(link / "hooks" / "ok-hook"))]})
    assert hs.check_label(path, str(link)) == []
    assert hs.check_label(path, str(docker_root)) == []
