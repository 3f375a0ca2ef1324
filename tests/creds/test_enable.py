"""Enabling the helper: plain-text `auths` found and moved, another user's home done as that user,
and `dockguard install --creds USER` staged under --root."""
from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dockguard.creds import enable as en
from dockguard.creds import store as S

from .conftest import SECRET

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_conf(d: Path, doc: dict) -> Path:
    p = d / "config.json"
    p.write_text(json.dumps(doc))
    return p


def test_plaintext_auths_finds_only_real_secrets(cfg):
    p = write_conf(cfg, {"auths": {
        "a.example": {"auth": b64("u:" + SECRET)},
        "b.example": {"identitytoken": "tok"},
        "c.example": {},                       # what the CLI leaves with a credsStore
        "d.example": {"email": "x@y", "auth": ""},
    }, "credsStore": "dockguard"})
    assert en.plaintext_auths(str(p)) == ["a.example", "b.example"]
    assert en.plaintext_auths(str(cfg / "missing.json")) == []
    (cfg / "bad.json").write_text("{")
    with pytest.raises(S.CredsError, match="not valid JSON"):
        en.plaintext_auths(str(cfg / "bad.json"))


def test_enable_moves_plaintext_logins_into_the_store(cfg):
    write_conf(cfg, {"auths": {"a.example": {"auth": b64("alice:" + SECRET), "email": "a@x"},
                               "https://index.docker.io/v1/": {"identitytoken": "idtok"},
                               "c.example": {}},
                     "psFormat": "table {{.ID}}"})
    res = en.enable(str(cfg))
    assert res["migrated"] == ["a.example", "https://index.docker.io/v1/"]
    conf = json.loads((cfg / "config.json").read_text())
    assert conf["credsStore"] == "dockguard" and conf["psFormat"] == "table {{.ID}}"
    assert conf["auths"] == {"a.example": {"email": "a@x"}, "https://index.docker.io/v1/": {}, "c.example": {}}
    assert stat.S_IMODE((cfg / "config.json").stat().st_mode) == 0o600
    v = S.Vault(str(cfg))
    assert v.get("a.example") == ("alice", SECRET)
    assert v.get("https://index.docker.io/v1/") == ("<token>", "idtok")
    for p in cfg.iterdir():
        assert SECRET.encode() not in p.read_bytes() and b64("alice:" + SECRET).encode() not in p.read_bytes()
    assert en.enable(str(cfg))["migrated"] == []  # idempotent


def test_enable_refuses_to_replace_another_store(cfg):
    write_conf(cfg, {"credsStore": "pass"})
    with pytest.raises(S.CredsError, match="already uses the credential store 'pass'"):
        en.enable(str(cfg))
    assert en.enable(str(cfg), force=True)["previous"] == "pass"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act for another user")
def test_enable_for_user_runs_as_that_user():
    base = Path(tempfile.mkdtemp(prefix="dgcred-home"))
    try:
        os.chmod(base, 0o711)
        home = base / "home"
        home.mkdir(mode=0o700)
        os.chown(home, 65534, 65534)
        res = en.enable_for_user(str(home))
        assert res["config"] == str(home / ".docker" / "config.json")
        for name in (".docker", ".docker/config.json"):
            assert (home / name).stat().st_uid == 65534  # created by the user, not by root
        # a login stored later by that user's helper lands in files of their own, 0600
        url = "reg.example"
        en._as_user(65534, 65534, lambda: S.Vault(str(home / ".docker")).store(url, "u", SECRET))
        for name in (S.KEY_NAME, S.STORE_NAME):
            st = (home / ".docker" / name).stat()
            assert st.st_uid == 65534 and stat.S_IMODE(st.st_mode) == 0o600
        assert en._as_user(65534, 65534, lambda: list(S.Vault(str(home / ".docker")).get(url))) == ["u", SECRET]
        with pytest.raises(S.UnsafeFile):  # root's own checks: not root's key
            S.Vault(str(home / ".docker")).get(url)
        # a planted symlink is never followed by root: the child (the user) hits it
        os.unlink(home / ".docker" / "config.json")
        os.symlink("/etc/passwd", home / ".docker" / "config.json")
        before = Path("/etc/passwd").read_bytes()
        with pytest.raises(S.CredsError, match="symbolic link"):
            en.enable_for_user(str(home))
        assert Path("/etc/passwd").read_bytes() == before
    finally:
        subprocess.run(["rm", "-rf", str(base)])


@pytest.mark.skipif(os.geteuid() != 0, reason="install needs root")
def test_install_creds_staged(tmp_path):
    (tmp_path / "root" / ".docker").mkdir(parents=True)
    write_conf(tmp_path / "root" / ".docker", {"auths": {"reg.example": {"auth": b64("bob:" + SECRET)}}})
    res = subprocess.run([sys.executable, "-m", "dockguard.cli", "install", "--root", str(tmp_path),
                          "--creds", "root"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert SECRET not in res.stdout + res.stderr
    helper = tmp_path / "usr/local/bin/docker-credential-dockguard"
    st = helper.stat()
    assert stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == 0
    assert helper.read_text().splitlines()[0].endswith(" -IS")
    conf = json.loads((tmp_path / "root/.docker/config.json").read_text())
    assert conf == {"auths": {"reg.example": {}}, "credsStore": "dockguard"}
    out = subprocess.run([str(helper), "get"], input="reg.example", capture_output=True, text=True,
                         env={"DOCKER_CONFIG": str(tmp_path / "root/.docker")})
    assert json.loads(out.stdout)["Secret"] == SECRET
    state = json.loads((tmp_path / "var/lib/dockguard/install.json").read_text())
    assert "/usr/local/bin/docker-credential-dockguard" in state["files"]
    res = subprocess.run([sys.executable, "-m", "dockguard.cli", "install", "--root", str(tmp_path),
                          "--creds", "no-such-user-dg"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 1 and "no such user" in res.stderr
    res = subprocess.run([sys.executable, "-m", "dockguard.cli", "uninstall", "--root", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert not helper.exists()
