"""Key changes killed half-way: either the old or the new key and store must work.

A child process runs the operation and dies (os._exit, no cleanup) at each step between the
writes of a key change; the parent then drives the real helper binary as the docker CLI
would, and a later write finishes or discards what the dead one left.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from dockguard.creds import store as S

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = ("key-written", "store-written", "store-replaced", "key-replaced")
LOGINS = {"127.0.0.1:5000": ("alice", "s3cret-a"), "reg.example": ("bob", "s3cret-b")}

CHILD = r"""
import os, sys
sys.path.insert(0, sys.argv[4])
from dockguard.creds import store as S
step, op, d = sys.argv[1:4]
def hook(name):
    if name == step:
        os._exit(9)
S._crash_hook = hook
v = S.Vault(d)
if op == "rotate":
    v.rotate()
elif op == "rotate-loop":
    while True:
        v.rotate()
else:
    v.store("new.example", "carol", "s3cret-c")
"""


def run_child(step: str, op: str, cfg) -> int:
    return subprocess.run([sys.executable, "-c", CHILD, step, op, str(cfg), REPO], timeout=60).returncode


def get(helper, url):
    res = helper("get", url)
    return res.returncode, (json.loads(res.stdout) if res.returncode == 0 else res.stdout.strip())


def key_id(cfg, name=S.KEY_NAME):
    return json.loads((cfg / name).read_bytes())["id"] if (cfg / name).exists() else None


def store_id(cfg):
    return json.loads((cfg / S.STORE_NAME).read_bytes())["key_id"]


def assert_logins_work(helper, logins=LOGINS):
    for url, (user, secret) in logins.items():
        code, out = get(helper, url)
        assert code == 0, out
        assert (out["Username"], out["Secret"]) == (user, secret)


def assert_clean(cfg):
    assert sorted(os.listdir(cfg)) == sorted([S.KEY_NAME, S.STORE_NAME, S.LOCK_NAME])


def seed(cfg):
    v = S.Vault(str(cfg))
    for url, (user, secret) in LOGINS.items():
        v.store(url, user, secret)
    return key_id(cfg)


@pytest.mark.parametrize("step", STEPS)
def test_rotate_killed_at_each_step(cfg, helper, step):
    old = seed(cfg)
    assert run_child(step, "rotate", cfg) == 9
    # The old pair (killed before the store was replaced) or the new one (after) works,
    # for a reader that repairs nothing.
    if step in ("key-written", "store-written"):
        assert store_id(cfg) == old == key_id(cfg)
    else:
        assert store_id(cfg) != old
    assert_logins_work(helper)
    # The next writer finishes or drops the half-done change; everything still opens.
    new_store = store_id(cfg)
    assert helper("store", json.dumps({"ServerURL": "x.example", "Username": "u", "Secret": "x"})).returncode == 0
    assert key_id(cfg) == store_id(cfg) == new_store
    assert_clean(cfg)
    assert_logins_work(helper)
    assert S.Vault(str(cfg)).rotate()["reencrypted"] == 3
    assert_logins_work(helper)


@pytest.mark.parametrize("step", STEPS)
def test_first_login_killed_at_each_step(cfg, helper, step):
    assert run_child(step, "store", cfg) == 9
    code, out = get(helper, "new.example")
    if step in ("key-written", "store-written"):
        assert (code, out) == (1, S.NOT_FOUND)  # never happened: the CLI asks again
    else:
        assert code == 0 and out["Secret"] == "s3cret-c"
    helper("store", json.dumps({"ServerURL": "new.example", "Username": "carol", "Secret": "s3cret-c"}))
    assert_clean(cfg)
    assert get(helper, "new.example")[1]["Secret"] == "s3cret-c"


@pytest.mark.parametrize("step", STEPS)
def test_login_after_removed_key_killed_at_each_step(cfg, helper, step):
    seed(cfg)
    os.unlink(cfg / S.KEY_NAME)
    assert run_child(step, "store", cfg) == 9
    for url in LOGINS:  # never a decryption or base64 error
        code, out = get(helper, url)
        assert code == 1 and out.startswith(S.KEY_REMOVED), out
    code, out = get(helper, "new.example")
    assert code == 0 or out == S.NOT_FOUND
    helper("store", json.dumps({"ServerURL": "new.example", "Username": "carol", "Secret": "s3cret-c"}))
    assert_clean(cfg)
    assert get(helper, "new.example")[1]["Secret"] == "s3cret-c"


def test_rotation_loop_sigkilled_at_random_times(cfg, helper):
    """Real SIGKILLs at arbitrary points of back-to-back rotations (not only between steps)."""
    seed(cfg)
    rng = random.Random(1234)
    for _ in range(12):
        p = subprocess.Popen([sys.executable, "-c", CHILD, "never", "rotate-loop", str(cfg), REPO])
        time.sleep(0.25 + rng.random() * 0.4)
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        assert_logins_work(helper)
    helper("erase", "nothing.example")  # a writer (not found) leaves the pair consistent
    assert_logins_work(helper)


def test_key_write_cut_short_after_removed_key(cfg, helper):
    """A writer killed while writing aeskey.new (a partial file) does not hide the real state."""
    seed(cfg)
    os.unlink(cfg / S.KEY_NAME)
    (cfg / "aeskey.new").write_bytes(b'{"dockguard-aeskey": 1, "id": "00')
    os.chmod(cfg / "aeskey.new", 0o600)
    code, out = get(helper, "reg.example")
    assert code == 1 and out.startswith(S.KEY_REMOVED)
    assert helper("store", json.dumps({"ServerURL": "new.example", "Username": "u", "Secret": "x"})).returncode == 0
    assert_clean(cfg)


def test_store_creates_the_dir_0700_under_a_strict_umask(tmp_path, helper):
    old = os.umask(0o277)
    try:
        S.Vault(str(tmp_path / "d")).store("r.example", "u", "s")
    finally:
        os.umask(old)
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o700
    assert S.Vault(str(tmp_path / "d")).get("r.example") == ("u", "s")
