"""The runtime wrapper without Docker: argv parsing, config.json injection, runc-style error
logs, and the installed sh front driven against a fake runc that records its argv."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from hookbin import install, oci, runtime
from hookbin.hookrun import unwrap
from hookbin import spec as hs

from . import ociconfigs
from .conftest import hook, write_exec, write_spec

ID = "0123456789abcdef" * 4

DOCKERD_ARGV = ["--root", "/run/runc-root", "--log", "/b/log.json", "--log-format", "json",
                "create", "--bundle", "/b", "--pid-file", "/b/init.pid", ID]


def test_parse_argv_as_dockerd_calls_it():
    inv = runtime.parse_argv(["--policy", "/etc/p.toml", "--hook-spec", "/etc/docker/hookspec.json", "--docker-root", "/var/lib/d", *DOCKERD_ARGV])
    assert inv.hook_spec == "/etc/docker/hookspec.json"
    assert inv.docker_root == "/var/lib/d" and inv.policy == "/etc/p.toml"
    assert inv.runc_args == DOCKERD_ARGV
    assert (inv.command, inv.bundle, inv.container_id) == ("create", "/b", ID)
    assert (inv.log, inv.log_format) == ("/b/log.json", "json")


@pytest.mark.parametrize("create_args, bundle", [
    (["--bundle=/x", ID], "/x"),
    (["-b", "/y", "--console-socket", "/s.sock", ID], "/y"),
    (["--pid-file", "/p", "--no-pivot", ID], "."),
])
def test_parse_create_bundle_forms(create_args, bundle):
    inv = runtime.parse_argv(["--root", "/r", "create", *create_args])
    assert (inv.bundle, inv.container_id) == (bundle, ID)


def test_parse_argv_equals_forms_and_defaults():
    inv = runtime.parse_argv(["--hook-spec=/s.json", "--docker-root=/d", "--systemd-cgroup", "--log=/l", "start", ID])
    assert (inv.hook_spec, inv.docker_root, inv.command, inv.log) == ("/s.json", "/d", "start", "/l")
    assert inv.runc_args == ["--systemd-cgroup", "--log=/l", "start", ID]
    bare = runtime.parse_argv(["--version"])
    assert bare.command is None and bare.runc_args == ["--version"]
    assert bare.docker_root == hs.DEFAULT_DOCKER_ROOT and bare.hook_spec is None


def test_parse_argv_refuses_dangling_option():
    with pytest.raises(runtime.UsageError, match="--hook-spec needs a value"):
        runtime.parse_argv(["--hook-spec"])


def test_add_hooks_appends_and_keeps_everything_else():
    config = {"ociVersion": "1.0.2", "process": {"args": ["sh"]}, "x-unknown": {"keep": [1, 2]},
              "hooks": {"prestart": [{"path": "/proc/1/exe", "args": ["libnetwork-setkey"]}],
                        "createRuntime": [{"path": "/c"}]}}
    spec = {"prestart": [{"path": "/h/a", "args": ["a"], "env": []}], "poststart": [],
            "poststop": [{"path": "/h/b", "args": ["b"], "env": [], "timeout": 3}]}
    out = oci.add_hooks(config, spec)
    assert [h["path"] for h in out["hooks"]["prestart"]] == ["/proc/1/exe", "/h/a"]
    assert out["hooks"]["poststop"] == [{"path": "/h/b", "args": ["b"], "env": [], "timeout": 3}]
    assert "poststart" not in out["hooks"]
    assert out["hooks"]["createRuntime"] == [{"path": "/c"}]
    assert out["x-unknown"] == {"keep": [1, 2]} and out["process"] == {"args": ["sh"]}
    assert len(config["hooks"]["prestart"]) == 1, "the input is not modified"


def test_log_line_is_what_containerd_parses():
    line = runtime.log_line("it broke", "json", now=1700000000.25)
    assert json.loads(line) == {"level": "error", "msg": "it broke", "time": "2023-11-14T22:13:20.250000000Z"}
    assert line.endswith("\n")
    text = runtime.log_line('say "x"', "text", now=1700000000.0)
    assert text == 'time="2023-11-14T22:13:20.000000000Z" level=error msg="say \\"x\\""\n'


def test_label_and_annotation_must_agree():
    assert runtime.container_spec_value({hs.LABEL: "/a"}, {}) == "/a"
    assert runtime.container_spec_value({}, {hs.LABEL: "/b"}) == "/b"
    assert runtime.container_spec_value({hs.LABEL: "/a"}, {hs.LABEL: "/a"}) == "/a"
    with pytest.raises(hs.SpecError, match="disagree"):
        runtime.container_spec_value({hs.LABEL: "/a"}, {hs.LABEL: "/b"})


# --- prepare_bundle on a fake bundle ------------------------------------------------------

@pytest.fixture
def bundle(tmp_path, docker_root):
    b = tmp_path / "bundle"
    b.mkdir()
    # a benign config as dockerd writes it: the runtime judges every create (hookbin/judge.py)
    (b / "config.json").write_text(json.dumps(ociconfigs.config(root=docker_root)))
    (docker_root / "containers" / ID).mkdir(parents=True)
    return b


def set_labels(docker_root, labels):
    (docker_root / "containers" / ID / "config.v2.json").write_text(json.dumps({"ID": ID, "Config": {"Labels": labels}}))


def test_prepare_bundle_daemon_wide_then_container_specs(tmp_path, docker_root, bundle, spec_dir, policy_file):
    ok = docker_root / "hooks" / "ok-hook"
    wide = write_spec(spec_dir / "wide.json", prestart=[hook(ok, "wide")])
    a = write_spec(spec_dir / "a.json", prestart=[hook(ok, "a")], poststop=[hook(ok, "a-stop")])
    b = write_spec(spec_dir / "b.json", prestart=[hook(ok, "b")])
    set_labels(docker_root, {hs.LABEL: f"{a},{b}", "other": "x"})
    inv = runtime.parse_argv(["--policy", str(policy_file), "--hook-spec", str(wide), "--docker-root", str(docker_root),
                              "create", "--bundle", str(bundle), ID])
    assert runtime.prepare_bundle(inv) == 4
    config = json.loads((bundle / "config.json").read_text())
    assert [unwrap(h)["args"] for h in config["hooks"]["prestart"][1:]] == [["ok-hook", "wide"], ["ok-hook", "a"], ["ok-hook", "b"]]
    assert config["hooks"]["prestart"][0] == {"path": "/existing"}
    assert unwrap(config["hooks"]["poststop"][0])["args"] == ["ok-hook", "a-stop"]
    assert config["root"] == {"path": "rootfs"}


def test_prepare_bundle_reads_the_annotation(tmp_path, docker_root, bundle, spec_dir, policy_file):
    a = write_spec(spec_dir / "a.json", poststart=[hook(docker_root / "hooks" / "ok-hook", "note")])
    config = json.loads((bundle / "config.json").read_text())
    config["annotations"] = {hs.LABEL: str(a)}
    (bundle / "config.json").write_text(json.dumps(config))
    inv = runtime.parse_argv(["--policy", str(policy_file), "--docker-root", str(docker_root), "create", "-b", str(bundle), ID])
    assert runtime.prepare_bundle(inv) == 1
    assert unwrap(json.loads((bundle / "config.json").read_text())["hooks"]["poststart"][0])["args"] == ["ok-hook", "note"]


def test_prepare_bundle_without_specs_leaves_config_alone(docker_root, bundle):
    before = (bundle / "config.json").read_bytes()
    set_labels(docker_root, {"unrelated": "1"})
    inv = runtime.parse_argv(["--docker-root", str(docker_root), "create", "--bundle", str(bundle), ID])
    assert runtime.prepare_bundle(inv) == 0
    assert (bundle / "config.json").read_bytes() == before


def test_prepare_bundle_refuses_bad_spec_and_changes_nothing(tmp_path, docker_root, bundle, spec_dir, policy_file):
    bad = write_spec(spec_dir / "bad.json", prestart=[hook(docker_root / "hooks" / "ok-hook", timeout=0)])
    set_labels(docker_root, {hs.LABEL: str(bad)})
    before = (bundle / "config.json").read_bytes()
    inv = runtime.parse_argv(["--policy", str(policy_file), "--docker-root", str(docker_root), "create", "--bundle", str(bundle), ID])
    with pytest.raises(hs.SpecError, match=r"prestart\[0\]\.timeout: 0 is out of range"):
        runtime.prepare_bundle(inv)
    assert (bundle / "config.json").read_bytes() == before
    assert sorted(os.listdir(bundle)) == ["config.json"]


@pytest.mark.parametrize("text, fault", [
    ("[hookspec\n", "is not valid TOML"),
    ('[hookspec]\nenv_allow = ["LD_PRELOAD"]\n', "may not allow LD_PRELOAD"),
    (None, "writable by group or others"),
])
def test_unusable_policy_refuses_and_changes_nothing(tmp_path, trusted, docker_root, bundle, spec_dir, text, fault):
    """The policy decides what runs as root: one that cannot be read, parsed or trusted
    fails closed, with the reason, for every container that has a spec."""
    good = write_spec(spec_dir / "good.json", prestart=[hook(docker_root / "hooks" / "ok-hook")])
    set_labels(docker_root, {hs.LABEL: str(good)})
    pol = trusted / "bad-policy.toml"
    pol.write_text(text or "[hookspec]\n")
    if text is None:
        os.chmod(pol, 0o666)
    before = (bundle / "config.json").read_bytes()
    res = runtime.main(["--runc", "/bin/false", "--policy", str(pol), "--docker-root", str(docker_root),
                        "--log", str(tmp_path / "log.txt"), "create", "--bundle", str(bundle), ID])
    assert res == 1
    log = (tmp_path / "log.txt").read_text()
    assert "dockguard-runtime: " in log and str(pol) in log and fault in log, log
    assert (bundle / "config.json").read_bytes() == before


def test_wrong_docker_root_is_refused_not_ignored(tmp_path, bundle):
    inv = runtime.parse_argv(["--docker-root", str(tmp_path / "nowhere"), "create", "--bundle", str(bundle), ID])
    with pytest.raises(hs.SpecError, match="has no containers/ directory: is --docker-root right"):
        runtime.prepare_bundle(inv)


def test_container_unknown_to_dockerd_has_no_labels(docker_root, bundle):
    inv = runtime.parse_argv(["--docker-root", str(docker_root), "create", "--bundle", str(bundle), "plugin-id"])
    assert runtime.prepare_bundle(inv) == 0


# --- the installed front script, against a fake runc -------------------------------------

FAKE_RUNC = '#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/runc.argv"\nexit 0\n'


@pytest.fixture
def front(tmp_path, docker_root):
    """Install the front with a fake runc; `py` None means a Python that does not exist."""
    fake = write_exec(tmp_path / "fake-runc", FAKE_RUNC)

    def make(py: str | None = None) -> str:
        bindir = tmp_path / ("bin-py" if py else "bin-nopy")
        return install.install_runtime(str(bindir), runc=str(fake), python=py or "/nonexistent/python3",
                                       docker_root=str(docker_root))
    return make


def runc_argv(tmp_path) -> list[str] | None:
    p = tmp_path / "runc.argv"
    return p.read_text().splitlines() if p.exists() else None


@pytest.mark.parametrize("cmd", [["start", ID], ["delete", "--force", ID], ["state", ID], ["features"], ["--version"]])
def test_front_passes_other_commands_to_runc_without_python(tmp_path, front, cmd):
    exe = front()
    res = subprocess.run([exe, "--policy", "/etc/p.toml", "--hook-spec", "/etc/x.json", "--docker-root", "/d", "--root", "/r",
                          "--log", "/l.json", "--log-format", "json", *cmd], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert runc_argv(tmp_path) == ["--root", "/r", "--log", "/l.json", "--log-format", "json", *cmd]


def test_front_create_without_any_spec_still_goes_through_python(tmp_path, front, docker_root, bundle):
    """Every create is judged (hookbin/judge.py): no hook-spec is no reason to skip Python."""
    set_labels(docker_root, {"a": "b"})
    res = subprocess.run([front(), "--root", "/r", "create", "--bundle", str(bundle), ID], capture_output=True, text=True)
    assert res.returncode != 0 and runc_argv(tmp_path) is None
    exe = front(py=os.path.realpath(os.sys.executable))
    res = subprocess.run([exe, "--docker-root", str(docker_root), "--root", "/r", "create", "--bundle", str(bundle), ID],
                         capture_output=True, text=True, env={})
    assert res.returncode == 0, res.stderr
    assert runc_argv(tmp_path) == ["--root", "/r", "create", "--bundle", str(bundle), ID]


def test_front_create_with_label_goes_through_python(tmp_path, front, docker_root, bundle, spec_dir, policy_file):
    """With a label the sh front must hand over to Python: a missing Python fails loudly."""
    spec = write_spec(spec_dir / "s.json", prestart=[hook(docker_root / "hooks" / "ok-hook")])
    set_labels(docker_root, {hs.LABEL: str(spec)})
    res = subprocess.run([front(), "create", "--bundle", str(bundle), ID], capture_output=True, text=True)
    assert res.returncode != 0 and runc_argv(tmp_path) is None
    exe = front(py=os.path.realpath(os.sys.executable))
    res = subprocess.run([exe, "--policy", str(policy_file), "--docker-root", str(docker_root), "--root", "/r", "--log", str(tmp_path / "log.json"),
                          "--log-format", "json", "create", "--bundle", str(bundle), ID],
                         capture_output=True, text=True, env={})
    assert res.returncode == 0, res.stderr
    assert runc_argv(tmp_path) == ["--root", "/r", "--log", str(tmp_path / "log.json"), "--log-format", "json",
                                   "create", "--bundle", str(bundle), ID]
    hooks = json.loads((bundle / "config.json").read_text())["hooks"]["prestart"]
    assert [unwrap(h)["path"] for h in hooks] == ["/existing", str(docker_root / "hooks" / "ok-hook")]


def test_front_create_with_bad_spec_logs_json_error_and_never_runs_runc(tmp_path, front, docker_root, bundle, spec_dir, policy_file):
    bad = write_spec(spec_dir / "bad.json", prestart=[hook(docker_root / "hooks" / "ok-hook", timeout="5")])
    set_labels(docker_root, {hs.LABEL: str(bad)})
    before = (bundle / "config.json").read_bytes()
    log = tmp_path / "log.json"
    exe = front(py=os.path.realpath(os.sys.executable))
    res = subprocess.run([exe, "--policy", str(policy_file), "--root", "/r", "--log", str(log), "--log-format", "json",
                          "create", "--bundle", str(bundle), "--pid-file", str(bundle / "init.pid"), ID],
                         capture_output=True, text=True, env={})
    assert res.returncode == 1
    assert runc_argv(tmp_path) is None
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 1 and records[0]["level"] == "error"
    assert records[0]["msg"] == (f"dockguard-runtime: hook-spec refused: {bad}: prestart[0].timeout: "
                                 'must be an integer in [1, 120] (got a string: "5")')
    assert "prestart[0].timeout" in res.stderr
    assert (bundle / "config.json").read_bytes() == before
    assert sorted(os.listdir(bundle)) == ["config.json"]


def test_front_with_wrong_docker_root_refuses(tmp_path, front, bundle):
    exe = front(py=os.path.realpath(os.sys.executable))
    res = subprocess.run([exe, "--docker-root", str(tmp_path / "nowhere"), "create", "--bundle", str(bundle), ID],
                         capture_output=True, text=True, env={})
    assert res.returncode == 1 and "is --docker-root right?" in res.stderr
    assert runc_argv(tmp_path) is None


def test_front_with_daemon_wide_spec_always_merges(tmp_path, front, docker_root, bundle, spec_dir, policy_file):
    wide = write_spec(spec_dir / "wide.json", poststop=[hook(docker_root / "hooks" / "ok-hook", "w")])
    exe = front(py=os.path.realpath(os.sys.executable))
    res = subprocess.run([exe, "--policy", str(policy_file), "--hook-spec", str(wide), "--docker-root", str(docker_root),
                          "create", "--bundle", str(bundle), ID], capture_output=True, text=True, env={})
    assert res.returncode == 0, res.stderr
    assert unwrap(json.loads((bundle / "config.json").read_text())["hooks"]["poststop"][0])["args"] == ["ok-hook", "w"]
    assert runc_argv(tmp_path) == ["create", "--bundle", str(bundle), ID]


def test_python_main_passthrough_matches_the_front(tmp_path, docker_root):
    fake = write_exec(tmp_path / "fake-runc", FAKE_RUNC)
    code = ("import sys; from hookbin.runtime import main; "
            f"sys.exit(main(['--runc', {str(fake)!r}, '--hook-spec', '/x', '--root', '/r', 'kill', {ID!r}, 'KILL']))")
    res = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert runc_argv(tmp_path) == ["--root", "/r", "kill", ID, "KILL"]


def test_installed_front_is_root_owned_0755(tmp_path, front):
    st = os.stat(front())
    assert st.st_mode & 0o7777 == 0o755
    if os.geteuid() == 0:
        assert st.st_uid == 0
    assert Path(front()).read_text().startswith("#!/bin/sh\n")
