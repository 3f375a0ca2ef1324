"""hookbin.hookrun: a hook that hangs, leaves a child holding its output, or writes
megabytes cannot hold runc up (issue 9); exit status, argv[0], stdin and env pass through."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hookbin import hookrun


def run(tmp_path, script: str, timeout: int = 0, stdin: bytes = b'{"id": "x"}', env=None, argv0="myhook"):
    prog = tmp_path / "hook"
    prog.write_text("#!/bin/sh\n" + script)
    prog.chmod(0o755)
    w = hookrun.wrap({"prestart": [{"path": str(prog), "args": [argv0, "a1"], "env": env or [],
                                    **({"timeout": timeout} if timeout else {})}]})["prestart"][0]
    # as runc runs it: path, args, env, stdin; stdout/stderr pipes waited on until closed
    res = subprocess.run(w["args"], executable=w["path"], input=stdin, capture_output=True,
                         env=dict(e.split("=", 1) for e in w["env"]), timeout=120)
    return w, res


def test_wrap_keeps_env_and_gives_runc_a_backstop_timeout(tmp_path):
    w, res = run(tmp_path, 'echo "$1 $(cat) $FOO"\n', timeout=5, env=["FOO=bar"])
    assert w["timeout"] == 5 + hookrun.RUNC_MARGIN and w["env"] == ["FOO=bar"]
    assert w["args"][1:3] == ["-I", "-S"]
    assert hookrun.unwrap(w) == {"path": str(tmp_path / "hook"), "args": ["myhook", "a1"]}
    assert res.returncode == 0
    assert res.stderr.decode() == 'a1 {"id": "x"} bar\n'   # the hook's output on stderr


def test_argv0_is_the_specs(tmp_path):
    w = hookrun.wrap({"poststop": [{"path": "/bin/sh", "args": ["myhook", "-c", "echo $0"], "env": []}]})
    w = w["poststop"][0]
    res = subprocess.run(w["args"], executable=w["path"], capture_output=True, timeout=60)
    assert res.returncode == 0 and res.stderr == b"myhook\n"


def test_exit_status_and_message_pass_through(tmp_path):
    _, res = run(tmp_path, "echo no way >&2\nexit 7\n")
    assert res.returncode == 7 and b"no way" in res.stderr


def test_hang_is_killed_with_its_group_at_the_timeout(tmp_path):
    _, res = run(tmp_path, "sleep 300 &\necho child $! > " + str(tmp_path / "pid") + "\nexec sleep 300\n", timeout=1)
    assert res.returncode == 124
    assert b"ran past its timeout of 1s: killed with its process group" in res.stderr
    child = int((tmp_path / "pid").read_text().split()[1])
    assert not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"


def test_child_left_holding_the_output_does_not_hold_the_caller(tmp_path):
    # communicate() returns only once every holder of the pipes is gone: the runner's
    # caller (runc) is not waiting for the child
    _, res = run(tmp_path, "sleep 300 &\necho done >&2\nexit 3\n", timeout=5)
    assert res.returncode == 3 and b"done" in res.stderr
    subprocess.run(["pkill", "-P", "1", "-x", "-f", "sleep 300"], check=False)  # noqa: tidy only


def test_megabytes_of_output_are_cut_to_the_tail(tmp_path):
    _, res = run(tmp_path, "head -c 8388608 /dev/zero | tr '\\0' x >&2\necho LAST >&2\nexit 1\n")
    assert res.returncode == 1
    assert len(res.stderr) < hookrun.KEEP + 200
    assert res.stderr.rstrip().endswith(b"LAST") and b"bytes of the hook's output left out" in res.stderr


def test_python_variables_from_the_spec_env_are_ignored(tmp_path):
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "os.py").write_text("raise SystemExit('hijacked')\n")
    (evil / "sitecustomize.py").write_text("raise SystemExit('hijacked')\n")
    _, res = run(tmp_path, "echo fine\n", env=[f"PYTHONPATH={evil}", f"PYTHONHOME={evil}",
                                               f"PYTHONSTARTUP={evil}/os.py"])
    assert res.returncode == 0 and res.stderr == b"fine\n", res.stderr


def test_missing_program_is_a_clear_error(tmp_path):
    w = hookrun.wrap({"prestart": [{"path": str(tmp_path / "nope"), "args": ["nope"], "env": []}]})["prestart"][0]
    res = subprocess.run(w["args"], executable=w["path"], capture_output=True, timeout=60)
    assert res.returncode == 127 and b"cannot run hook" in res.stderr
