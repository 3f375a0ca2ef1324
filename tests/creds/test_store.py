"""Unit tests of the encrypted login store (dockguard/creds/store.py), in process."""
from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from dockguard.creds import store as S

from .conftest import SECRET, USER

URL = "127.0.0.1:5000"


def files_bytes(d) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(d.iterdir()) if p.is_file())


def assert_no_clear_secret(blob: bytes, secret: str = SECRET) -> None:
    for form in (secret.encode(), base64.b64encode(secret.encode()),
                 base64.b64encode(f"{USER}:{secret}".encode()), json.dumps(secret).encode()):
        assert form not in blob


def test_roundtrip_list_erase(cfg):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    v.store("https://index.docker.io/v1/", "<token>", "tok")
    assert v.get(URL) == (USER, SECRET)
    assert v.list() == {URL: USER, "https://index.docker.io/v1/": "<token>"}
    v.store(URL, "other", "new-secret")  # a new login replaces the old one
    assert v.get(URL) == ("other", "new-secret")
    v.erase(URL)
    with pytest.raises(S.NotFound) as e:
        v.get(URL)
    assert str(e.value) == "credentials not found in native keychain"
    with pytest.raises(S.NotFound):
        v.erase(URL)
    assert v.list() == {"https://index.docker.io/v1/": "<token>"}


def test_missing_dir_reads_empty_and_store_creates_it_0700(tmp_path):
    v = S.Vault(str(tmp_path / "nope"))
    assert v.list() == {}
    with pytest.raises(S.NotFound):
        v.get(URL)
    assert not (tmp_path / "nope").exists()  # a read creates nothing
    v.store(URL, USER, SECRET)
    assert stat.S_IMODE((tmp_path / "nope").stat().st_mode) == 0o700


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_files_0600_whatever_the_umask(cfg, umask):
    old = os.umask(umask)
    try:
        v = S.Vault(str(cfg))
        v.store(URL, USER, SECRET)
        v.rotate()
    finally:
        os.umask(old)
    for name in (S.KEY_NAME, S.STORE_NAME):
        st = (cfg / name).stat()
        assert stat.S_IMODE(st.st_mode) == 0o600, name
        assert st.st_uid == os.geteuid()
    assert S.Vault(str(cfg)).get(URL) == (USER, SECRET)


def test_nothing_in_clear_on_disk(cfg):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    v.store("reg.example", USER, SECRET)
    blob = files_bytes(cfg)
    assert_no_clear_secret(blob)
    assert USER.encode() not in blob  # the username is sealed too (the guide: user and password)
    doc = json.loads((cfg / S.STORE_NAME).read_bytes())
    nonces = [e["nonce"] for e in doc["entries"].values()]
    assert len(base64.b64decode(nonces[0])) == 12 and len(set(nonces)) == 2
    assert len({e["data"] for e in doc["entries"].values()}) == 2  # same secret, other ciphertext


def test_new_nonce_on_every_seal():
    key = S.new_key()
    a, b = S.seal_entry(key, URL, USER, SECRET), S.seal_entry(key, URL, USER, SECRET)
    assert a["nonce"] != b["nonce"] and a["data"] != b["data"]


def test_entry_moved_to_another_registry_does_not_decrypt():
    key = S.new_key()
    entry = S.seal_entry(key, URL, USER, SECRET)
    assert S.open_entry(key, URL, entry) == (USER, SECRET)
    with pytest.raises(S.Tampered, match="127.0.0.2:5000 does not decrypt"):
        S.open_entry(key, "127.0.0.2:5000", entry)
    other = S.Key(S.new_key().id, key.created, key.raw)  # same bytes, another key id
    with pytest.raises(S.Tampered):
        S.open_entry(other, URL, entry)


def edit_store(cfg, fn):
    p = cfg / S.STORE_NAME
    doc = json.loads(p.read_bytes())
    fn(doc)
    p.write_text(json.dumps(doc))


def flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    return base64.b64encode(bytes(raw)).decode()


TAMPERINGS = {
    "entry moved": lambda d: d["entries"].__setitem__("evil.example", d["entries"].pop(URL)),
    "entry removed": lambda d: d["entries"].pop("reg.example"),
    "ciphertext flipped": lambda d: d["entries"][URL].__setitem__("data", flip(d["entries"][URL]["data"])),
    "nonce changed": lambda d: d["entries"][URL].__setitem__("nonce", flip(d["entries"][URL]["nonce"])),
    "marked orphan": lambda d: d["entries"].__setitem__(URL, {"orphan": d["key_id"]}),
    "seal removed": lambda d: d.pop("seal"),
    "seal flipped": lambda d: d.__setitem__("seal", flip(d["seal"])),
    "entry from another store": lambda d: d["entries"].__setitem__(
        URL, S.seal_entry(S.new_key(), URL, USER, "planted")),
}


@pytest.mark.parametrize("how", sorted(TAMPERINGS))
def test_tampered_store_refused(cfg, how):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    v.store("reg.example", USER, SECRET)
    edit_store(cfg, TAMPERINGS[how])
    for op in (lambda: v.get(URL), lambda: v.get("reg.example"), v.list, v.status,
               lambda: v.store("new.example", USER, "x"), lambda: v.erase(URL), v.rotate):
        with pytest.raises(S.Tampered) as e:
            op()
        msg = str(e.value)
        assert "modified outside dockguard" in msg and "docker login again" in msg
        assert_no_clear_secret(msg.encode())


@pytest.mark.parametrize("content", [b"", b"{", b"[1]", b"\xff\xfe", b'{"dockguard-creds": 2}',
                                     b'{"dockguard-creds": 1, "key_id": "zz", "entries": {}}'])
def test_truncated_or_foreign_store_refused(cfg, content):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    full = (cfg / S.STORE_NAME).read_bytes()
    for data in (content, full[: len(full) // 2]):
        (cfg / S.STORE_NAME).write_bytes(data)
        with pytest.raises(S.Tampered, match="damaged or was modified outside dockguard"):
            v.get(URL)


def test_wrong_key_same_id_fails_integrity(cfg):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    key = S.parse_key((cfg / S.KEY_NAME).read_bytes(), "k")
    (cfg / S.KEY_NAME).write_bytes(S.dump_key(S.Key(key.id, key.created, os.urandom(32))))
    with pytest.raises(S.Tampered, match="integrity check failed"):
        v.get(URL)


def test_wrong_key_other_id_is_named(cfg):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    (cfg / S.KEY_NAME).write_bytes(S.dump_key(S.new_key()))
    with pytest.raises(S.Tampered, match="is not the key .* was written with"):
        v.get(URL)
    with pytest.raises(S.Tampered):  # a login does not silently drop the others
        v.store("x.example", USER, "y")


@pytest.mark.parametrize("content", [b"", b"garbage", b'{"dockguard-aeskey": 1, "id": "0011223344556677", '
                                     b'"created": 1, "key": "!!!"}', os.urandom(32)])
def test_damaged_key_file_clear_message_no_base64_error(cfg, content):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    (cfg / S.KEY_NAME).write_bytes(content)
    with pytest.raises(S.CredsError) as e:
        v.get(URL)
    assert "is not a dockguard key file" in str(e.value)
    assert "base64" not in str(e.value).lower()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o602])
def test_key_readable_by_others_refused(cfg, mode):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    os.chmod(cfg / S.KEY_NAME, mode)
    with pytest.raises(S.UnsafeFile, match=f"mode {mode:04o}.*chmod 600"):
        v.get(URL)
    with pytest.raises(S.UnsafeFile):
        v.store(URL, USER, "x")


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_key_owned_by_someone_else_refused(cfg):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    os.chown(cfg / S.KEY_NAME, 65534, 65534)
    with pytest.raises(S.UnsafeFile, match="owned by uid 65534"):
        v.get(URL)


def test_symlinked_key_refused(cfg, tmp_path):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    os.replace(cfg / S.KEY_NAME, tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", cfg / S.KEY_NAME)
    with pytest.raises(S.UnsafeFile, match="symbolic link"):
        v.get(URL)


def test_fifo_key_refused_without_hanging(cfg):
    os.mkfifo(cfg / S.KEY_NAME, 0o600)
    with pytest.raises(S.UnsafeFile, match="not a regular file"):
        S.Vault(str(cfg)).store(URL, USER, SECRET)


def test_group_writable_dir_refused(cfg):
    os.chmod(cfg, 0o770)
    with pytest.raises(S.UnsafeFile, match="writable by group or others"):
        S.Vault(str(cfg)).store(URL, USER, SECRET)


def test_removed_key_says_so_and_login_again_fixes_it(cfg):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    v.store("reg.example", USER, SECRET)
    os.unlink(cfg / S.KEY_NAME)
    with pytest.raises(S.KeyRemoved) as e:
        v.get(URL)
    assert str(e.value).startswith("the key was removed: run docker login again")
    assert "base64" not in str(e.value)
    assert v.list() == {}
    with pytest.raises(S.KeyRemoved):
        v.rotate()
    v.store(URL, USER, "fresh")  # docker login again: a new key
    assert v.get(URL) == (USER, "fresh")
    with pytest.raises(S.KeyRemoved):  # the other registry still needs its own login
        v.get("reg.example")
    st = v.status()
    assert [(r["server"], r["state"]) for r in st["registries"]] == [(URL, "ok"), ("reg.example", "key-removed")]
    assert st["key"]["present"] and st["key"]["age_seconds"] >= 0
    v.erase("reg.example")
    assert v.list() == {URL: USER}


def test_erase_with_key_removed(cfg):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    os.unlink(cfg / S.KEY_NAME)
    v.erase(URL)  # docker logout still works
    with pytest.raises(S.NotFound):
        v.get(URL)
    assert not (cfg / S.KEY_NAME).exists()
    v.store(URL, USER, SECRET)
    assert v.get(URL) == (USER, SECRET)


def test_rotate_reencrypts_everything(cfg):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    v.store("reg.example", "bob", "other")
    before = json.loads((cfg / S.STORE_NAME).read_bytes())
    old_key = (cfg / S.KEY_NAME).read_bytes()
    res = v.rotate()
    after = json.loads((cfg / S.STORE_NAME).read_bytes())
    assert res["reencrypted"] == 2 and res["old_key_id"] == before["key_id"] != res["new_key_id"]
    assert after["key_id"] == res["new_key_id"]
    assert (cfg / S.KEY_NAME).read_bytes() != old_key
    for url in (URL, "reg.example"):
        assert after["entries"][url] != before["entries"][url]
    assert v.get(URL) == (USER, SECRET) and v.get("reg.example") == ("bob", "other")
    assert sorted(os.listdir(cfg)) == sorted([S.KEY_NAME, S.STORE_NAME, S.LOCK_NAME])


def test_rotate_without_anything_is_a_no_op(cfg):
    assert S.Vault(str(cfg)).rotate()["new_key_id"] is None


def test_status_lists_registries_never_secrets(cfg):
    v = S.Vault(str(cfg))
    v.store(URL, USER, SECRET)
    st = v.status()
    assert st["registries"] == [{"server": URL, "username": USER, "state": "ok"}]
    assert SECRET not in json.dumps(st)


def test_config_dir_as_the_cli_finds_it():
    assert S.config_dir({"DOCKER_CONFIG": "/x/y", "HOME": "/h"}) == "/x/y"
    assert S.config_dir({"HOME": "/h"}) == "/h/.docker"
    import pwd
    assert S.config_dir({}) == os.path.join(pwd.getpwuid(os.geteuid()).pw_dir, ".docker")


def test_key_repr_hides_the_key():
    key = S.new_key()
    assert base64.b64encode(key.raw).decode() not in repr(key) and key.raw.hex() not in repr(key)
