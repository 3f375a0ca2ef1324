"""Issue 13's CLI conventions, for every subcommand: help on every option, --json on every read
command, exit 2 for usage, 1 for a failure with the one error prefix and no traceback."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from dockguard.cli import build_parser

# Commands that only read and report: each must take --json.
READ_COMMANDS = {
    "authz check", "authz check-policy", "authz rules", "healthd status", "preflight",
    "creds status", "doctor", "diag pidns",
}


def walk(parser: argparse.ArgumentParser, path=()):
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, path + (name,))


def leaves():
    return [(name, p) for name, p in walk(build_parser()) if name and not any(
        isinstance(a, argparse._SubParsersAction) for a in p._actions)]


def test_every_option_has_help():
    missing = []
    for name, p in walk(build_parser()):
        for a in p._actions:
            if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction, argparse._VersionAction)):
                continue
            if not a.help or a.help == argparse.SUPPRESS:
                missing.append(f"dockguard {name} {'/'.join(a.option_strings) or a.dest}")
    assert not missing, "options without help: " + ", ".join(missing)


def test_read_commands_take_json():
    names = {n for n, _ in leaves()}
    assert READ_COMMANDS <= names, READ_COMMANDS - names
    for name, p in leaves():
        if name in READ_COMMANDS:
            assert any("--json" in a.option_strings for a in p._actions), f"dockguard {name} has no --json"


def test_worker_class_refuses_the_deadlocking_ones():
    r = run("authz", "serve", "--socket", "/nonexistent/x.sock", "--worker-class", "sync")
    assert r.returncode == 2 and r.stderr.startswith("dockguard: error: ") and "deadlock" in r.stderr


def test_docker_host_help_says_the_fallback():
    for name, p in walk(build_parser()):
        for a in p._actions:
            if "--docker-host" in a.option_strings and "fail closed without" in (a.help or ""):
                pytest.fail(f"dockguard {name} --docker-host help says lookups fail without it")


def run(*args, input=None):
    return subprocess.run([sys.executable, "-m", "dockguard.cli", *args], capture_output=True,
                          text=True, input=input, timeout=120)


@pytest.mark.parametrize("args", [
    ("authz", "check", "/nonexistent/request.json"),
    ("authz", "check", "--policy", "/nonexistent/policy.toml", "-"),
    ("authz", "check-policy", "/nonexistent/policy.toml"),
    ("authz", "rules", "--policy", "/nonexistent/policy.toml"),
    ("authz", "serve", "--socket", "/tmp/x.sock", "--policy", "/nonexistent/policy.toml"),
])
def test_missing_files_are_a_message_and_exit_1(args):
    r = run(*args, input="")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.startswith("dockguard: error: ") and "Traceback" not in r.stderr, r.stderr
    assert "/nonexistent/" in r.stderr


def test_usage_error_exits_2():
    r = run("authz", "rules", "--no-such-option")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_check_policy(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('mode = "audit"\n[[exceptions]]\nname = "localtime"\nrule = "sensitive-mount"\n'
                    'bind = "/etc/localtime:ro"\n')
    r = run("authz", "check-policy", str(good))
    assert r.returncode == 0 and "valid" in r.stdout and "localtime" in r.stdout, r.stderr
    r = run("authz", "check-policy", "--json", str(good))
    import json
    doc = json.loads(r.stdout)
    assert doc["valid"] and doc["mode"] == "audit" and len(doc["policy_hash"]) == 16
    bad = tmp_path / "bad.toml"
    bad.write_text('[rules]\nprivileged = "maybe"\n')
    r = run("authz", "check-policy", str(bad))
    assert r.returncode == 1 and r.stderr.startswith("dockguard: error: ") and "must be one of" in r.stderr
