"""`dockguard hookspec validate|merge|install` through the umbrella CLI."""
from __future__ import annotations

import json
import os

import pytest

from dockguard.cli import main

from .conftest import hook, write_spec


def test_validate_ok_and_faults(spec_dir, docker_root, policy_file, capsys):
    ok = write_spec(spec_dir / "ok.json", prestart=[hook(docker_root / "hooks" / "ok-hook", timeout=5)])
    bad = write_spec(spec_dir / "bad.json", prestart=[hook(docker_root / "hooks" / "ok-hook", timeout=1.5)])
    assert main(["hookspec", "validate", "--docker-root", str(docker_root), "--policy", str(policy_file), str(ok)]) == 0
    assert capsys.readouterr().out == f"{ok}: ok\n"
    assert main(["hookspec", "validate", "--docker-root", str(docker_root), "--policy", str(policy_file), str(ok), str(bad)]) == 1
    out = capsys.readouterr()
    assert out.out == f"{ok}: ok\n"
    assert out.err == f"dockguard: error: {bad}: prestart[0].timeout: must be an integer in [1, 120] (got a float: 1.5)\n"


def test_merge_in_order_to_stdout(spec_dir, docker_root, policy_file, capsys):
    ok = docker_root / "hooks" / "ok-hook"
    a = write_spec(spec_dir / "a.json", prestart=[hook(ok, "a")], poststart=[], poststop=[])
    b = write_spec(spec_dir / "b.json", prestart=[hook(ok, "b")], poststop=[hook(ok, "b-stop")])
    assert main(["hookspec", "merge", "--docker-root", str(docker_root), "--policy", str(policy_file), str(a), str(b)]) == 0
    merged = json.loads(capsys.readouterr().out)
    assert [h["args"][1] for h in merged["prestart"]] == ["a", "b"]
    assert [h["args"][1] for h in merged["poststop"]] == ["b-stop"] and merged["poststart"] == []


def test_merge_refuses_and_writes_nothing(spec_dir, docker_root, policy_file, capsys):
    ok = docker_root / "hooks" / "ok-hook"
    a = write_spec(spec_dir / "a.json", prestart=[hook(ok, "a")])
    b = spec_dir / "b.json"
    b.write_text('{"prestart": [}')
    out = spec_dir / "merged.json"
    assert main(["hookspec", "merge", "--docker-root", str(docker_root), "--policy", str(policy_file), "-o", str(out), str(a), str(b)]) == 1
    err = capsys.readouterr().err
    assert f"error: {b}:1:15: invalid JSON" in err and "nothing written" in err
    assert not out.exists()
    assert main(["hookspec", "merge", "--docker-root", str(docker_root), "--policy", str(policy_file), "-o", str(out), str(a), str(a)]) == 0
    assert [h["args"][1] for h in json.loads(out.read_text())["prestart"]] == ["a", "a"]


def test_validate_by_the_default_policy_refuses_a_spec_outside_spec_dirs(spec_dir, docker_root, capsys):
    ok = write_spec(spec_dir / "ok.json", prestart=[hook(docker_root / "hooks" / "ok-hook", timeout=5)])
    assert main(["hookspec", "validate", "--docker-root", str(docker_root), str(ok)]) == 1
    assert "must lie in a spec directory the host grants (/etc/docker/hookspecs" in capsys.readouterr().err


def test_validate_with_an_unreadable_policy_fails_closed(spec_dir, docker_root, trusted, capsys):
    ok = write_spec(spec_dir / "ok.json", prestart=[hook(docker_root / "hooks" / "ok-hook", timeout=5)])
    bad = trusted / "bad.toml"
    bad.write_text("[hookspec\n")
    assert main(["hookspec", "validate", "--docker-root", str(docker_root), "--policy", str(bad), str(ok)]) == 1
    assert f"error: policy {bad} is not valid TOML" in capsys.readouterr().err


def test_install_writes_hooks_and_runtime(tmp_path, capsys):
    if os.geteuid() != 0:
        assert main(["hookspec", "install", "--docker-root", str(tmp_path / "root"), "--bin-dir", str(tmp_path / "bin")]) == 1
        return
    root, bindir = tmp_path / "root", tmp_path / "bin"
    assert main(["hookspec", "install", "--docker-root", str(root), "--bin-dir", str(bindir),
                 "--hook-spec", "/etc/docker/hookspec.json"]) == 0
    out = capsys.readouterr().out
    assert sorted(os.listdir(root / "hooks")) == ["docker-hooks", "lxcfs-hook", "network-hook"]
    assert os.access(bindir / "dockguard-runtime", os.X_OK)
    snippet = json.loads(out.split("restart dockerd:\n", 1)[1])
    assert snippet["runtimes"]["dockguard"] == {
        "path": str(bindir / "dockguard-runtime"),
        "runtimeArgs": ["--hook-spec", "/etc/docker/hookspec.json", "--docker-root", str(root)]}
    assert snippet["default-runtime"] == "dockguard"


@pytest.mark.skipif(os.geteuid() != 0, reason="install needs root")
def test_install_refuses_group_writable_hooks_dir(tmp_path, capsys):
    (tmp_path / "root" / "hooks").mkdir(parents=True)
    os.chmod(tmp_path / "root" / "hooks", 0o775)
    assert main(["hookspec", "install", "--docker-root", str(tmp_path / "root"), "--bin-dir", str(tmp_path / "bin")]) == 1
    assert "writable by group or others" in capsys.readouterr().err
    assert os.listdir(tmp_path / "root" / "hooks") == []
