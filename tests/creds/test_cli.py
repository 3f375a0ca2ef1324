"""`dockguard creds status|rotate-key|enable`: exit codes 0/1/2, --json, help on every option."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from dockguard.creds import cli
from dockguard.creds import store as S

from .conftest import SECRET, USER

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def creds(cfg, *args):
    env = dict(os.environ, DOCKER_CONFIG=str(cfg))
    return subprocess.run([sys.executable, "-m", "dockguard.cli", "creds", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=REPO)


def test_status_json_and_text(cfg):
    S.Vault(str(cfg)).store("127.0.0.1:5000", USER, SECRET)
    (cfg / "config.json").write_text(json.dumps({"auths": {"old.example": {"auth": "dTpw"}}}))
    res = creds(cfg, "status", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["registries"] == [{"server": "127.0.0.1:5000", "username": USER, "state": "ok"}]
    assert doc["key"]["present"] and len(doc["key"]["id"]) == 16 and doc["key"]["age_seconds"] >= 0
    assert doc["config_json"]["plaintext_auths"] == ["old.example"]
    text = creds(cfg, "status")
    assert text.returncode == 0
    assert "127.0.0.1:5000  user tester" in text.stdout and "age " in text.stdout
    assert "old.example in plain text" in text.stdout
    for out in (res.stdout, text.stdout):
        assert SECRET not in out


def test_status_with_removed_key(cfg):
    S.Vault(str(cfg)).store("127.0.0.1:5000", USER, SECRET)
    os.unlink(cfg / S.KEY_NAME)
    res = creds(cfg, "status")
    assert res.returncode == 0
    assert "REMOVED" in res.stdout and "docker login 127.0.0.1:5000 again" in res.stdout


def test_rotate_key_cli(cfg):
    S.Vault(str(cfg)).store("127.0.0.1:5000", USER, SECRET)
    old = json.loads((cfg / S.KEY_NAME).read_text())["id"]
    res = creds(cfg, "rotate-key", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["old_key_id"] == old and out["new_key_id"] == json.loads((cfg / S.KEY_NAME).read_text())["id"]
    assert out["reencrypted"] == 1
    assert S.Vault(str(cfg)).get("127.0.0.1:5000") == (USER, SECRET)


def test_failures_exit_1_with_message_usage_exit_2(cfg):
    S.Vault(str(cfg)).store("127.0.0.1:5000", USER, SECRET)
    os.chmod(cfg / S.KEY_NAME, 0o644)
    for cmd in (("status",), ("rotate-key",)):
        res = creds(cfg, *cmd)
        assert res.returncode == 1 and "chmod 600" in res.stderr and "Traceback" not in res.stderr
    os.unlink(cfg / S.KEY_NAME)
    res = creds(cfg, "rotate-key")
    assert res.returncode == 1 and "the key was removed: run docker login again" in res.stderr
    assert creds(cfg, "rotate-key", "--bogus").returncode == 2
    assert creds(cfg).returncode == 2


def test_every_option_has_help():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli.register(sub, "creds")
    creds_parser = sub.choices["creds"]
    subs = [a for a in creds_parser._actions if isinstance(a, argparse._SubParsersAction)][0]
    assert set(subs.choices) == {"status", "rotate-key", "enable"}
    for name, p in subs.choices.items():
        for action in p._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"creds {name} {action.option_strings}: no help"
        if name != "enable":
            assert any("--json" in a.option_strings for a in p._actions), name
