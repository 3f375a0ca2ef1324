"""The encrypted login store behind `docker-credential-dockguard`.

Two files in the docker config directory (`$DOCKER_CONFIG`, else `~/.docker`, as the CLI
finds it):

- `aeskey`: the AES-256 key, with a random key id and its creation time; 0600, owned by the
  user, created by us (O_EXCL, mode set by fchmod so the umask does not matter). A key that
  group or others can read, or that someone else owns, is refused.
- `dockguard-creds.json`: one entry per registry, `{nonce, data}`: username and secret
  sealed with AES-256-GCM under a fresh 96-bit nonce, with the key id and the server URL as
  associated data (an entry copied to another registry fails to open). The whole file is
  sealed too (a GCM tag over its canonical content), so a removed, swapped or edited entry
  is refused as tampering rather than half-used.

Every write replaces the store atomically (temp file, fsync, rename, fsync of the
directory) under an exclusive flock; readers take a shared one, so two concurrent logins
lose nothing. A key change (first login, login after the key was removed, rotation) is
ordered so a crash at any point leaves a working pair:

  1. write the new key to `aeskey.new`;  2. replace the store (it names the new key id);
  3. rename `aeskey.new` over `aeskey`.

Whoever next opens the store finds either the old store with the old key (a stale
`aeskey.new` is dropped), or the new store whose key id matches `aeskey.new` (the rename is
finished). When `aeskey` is gone, the entries it sealed become "orphans": a `get` for them
says the key was removed and to log in again, never a base64 or decryption error, and a new
login seals under a new key without touching other registries' markers.

Imports are kept to what the helper needs: it runs on every `docker push` and `docker pull`
(cryptography, the costliest, only once something must be sealed or opened). No message
built here ever contains a secret.
"""
from __future__ import annotations

import binascii
import errno
import fcntl
import json
import os
import stat
import time

from dockguard.util import DockguardError


KEY_NAME = "aeskey"
STORE_NAME = "dockguard-creds.json"
LOCK_NAME = ".dockguard-creds.lock"
FORMAT = 1
KEY_FORMAT = 1
NONCE_LEN = 12
TAG_LEN = 16
MAX_FILE = 8 << 20
MAX_URL = 4096

NOT_FOUND = "credentials not found in native keychain"
KEY_REMOVED = "the key was removed: run docker login again"

# Test hook: called with a step name between the writes of a key change (see _commit).
_crash_hook = None


class CredsError(DockguardError):
    """A refusal whose message is meant for the user; it never holds a secret."""


class NotFound(CredsError):
    def __init__(self) -> None:
        super().__init__(NOT_FOUND)


class KeyRemoved(CredsError):
    """The entry was sealed with a key that is no longer there."""


class Tampered(CredsError):
    """The store or the key does not verify: damaged, edited, or not the matching pair."""


class UnsafeFile(CredsError):
    """A file or directory whose type, owner or mode we refuse to trust."""


def config_dir(environ=None) -> str:
    """The docker CLI's config directory: $DOCKER_CONFIG, else $HOME/.docker (passwd if unset)."""
    env = os.environ if environ is None else environ
    d = env.get("DOCKER_CONFIG")
    if d:
        return d
    home = env.get("HOME")
    if not home:
        import pwd
        home = pwd.getpwuid(os.geteuid()).pw_dir
    return os.path.join(home, ".docker")


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _unb64(text) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not a string")
    return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)


class Key:
    """An AES-256 key with its id (random, public) and creation time."""

    __slots__ = ("id", "created", "raw")

    def __init__(self, key_id: str, created: int, raw: bytes) -> None:
        self.id, self.created, self.raw = key_id, created, raw

    def __repr__(self) -> str:  # never the key bytes
        return f"Key(id={self.id!r}, created={self.created})"


def new_key() -> Key:
    return Key(os.urandom(8).hex(), int(time.time()), os.urandom(32))


def dump_key(key: Key) -> bytes:
    return (json.dumps({"dockguard-aeskey": KEY_FORMAT, "id": key.id, "created": key.created,
                        "key": _b64(key.raw)}) + "\n").encode("ascii")


def _is_key_id(value) -> bool:
    return isinstance(value, str) and len(value) == 16 and all(c in "0123456789abcdef" for c in value)


def parse_key(data: bytes, path: str) -> Key:
    bad = CredsError(f"{path} is not a dockguard key file (damaged or from another tool): remove it "
                     "and run docker login again")
    try:
        doc = json.loads(data)
        raw = _unb64(doc["key"])
        key_id, created = doc["id"], doc["created"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise bad from None
    if doc.get("dockguard-aeskey") != KEY_FORMAT or len(raw) != 32 or not _is_key_id(key_id) \
            or not isinstance(created, int) or isinstance(created, bool):
        raise bad
    return Key(key_id, created, raw)


# --- sealing: plain functions over plain data ---------------------------------------------

def _encrypt(key: Key, nonce: bytes, plain: bytes, ad: bytes) -> bytes:
    # cryptography is imported on first use: `version`, and a user with no store yet, skip it
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    return AESGCM(key.raw).encrypt(nonce, plain, ad)


def _decrypt(key: Key, nonce: bytes, data: bytes, ad: bytes) -> bytes:
    """The plaintext; ValueError if the tag does not verify."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    try:
        return AESGCM(key.raw).decrypt(nonce, data, ad)
    except InvalidTag:
        raise ValueError("authentication tag mismatch") from None


def _entry_ad(key_id: str, url: str) -> bytes:
    return b"dockguard-creds/1 entry\0" + key_id.encode("ascii") + b"\0" + url.encode("utf-8")


def seal_entry(key: Key, url: str, username: str, secret: str) -> dict:
    """Encrypt one login, bound to its registry and key id."""
    nonce = os.urandom(NONCE_LEN)
    plain = json.dumps({"u": username, "s": secret}).encode("ascii")
    return {"nonce": _b64(nonce), "data": _b64(_encrypt(key, nonce, plain, _entry_ad(key.id, url)))}


def open_entry(key: Key, url: str, entry: dict, path: str = "the credential store") -> tuple[str, str]:
    """(username, secret) of a sealed entry; Tampered if it does not verify for this URL."""
    try:
        nonce = _unb64(entry["nonce"])
        plain = _decrypt(key, nonce, _unb64(entry["data"]), _entry_ad(key.id, url))
        doc = json.loads(plain)
        username, secret = doc["u"], doc["s"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise Tampered(f"{path}: the entry for {url} does not decrypt with this key (damaged, moved "
                       "from another registry, or edited): run docker login again") from None
    if not isinstance(username, str) or not isinstance(secret, str):
        raise Tampered(f"{path}: the entry for {url} is malformed: run docker login again")
    return username, secret


def _seal_ad(doc: dict) -> bytes:
    body = {"dockguard-creds": FORMAT, "key_id": doc["key_id"], "entries": doc["entries"]}
    return b"dockguard-creds/1 seal\0" + json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")


def seal_store(key: Key, doc: dict) -> None:
    nonce = os.urandom(NONCE_LEN)
    doc["seal"] = _b64(nonce + _encrypt(key, nonce, b"", _seal_ad(doc)))


def verify_store(key: Key, doc: dict, path: str) -> None:
    try:
        raw = _unb64(doc.get("seal"))
        if len(raw) != NONCE_LEN + TAG_LEN:
            raise ValueError("seal length")
        _decrypt(key, raw[:NONCE_LEN], raw[NONCE_LEN:], _seal_ad(doc))
    except (ValueError, binascii.Error):
        raise Tampered(f"{path} was modified outside dockguard, or {KEY_NAME} is not the key it was "
                       "written with (integrity check failed): remove it and run docker login again") from None


def _damaged(path: str, why: str) -> Tampered:
    return Tampered(f"{path} is damaged or was modified outside dockguard ({why}): remove it and run "
                    "docker login again")


def parse_store(data: bytes, path: str) -> dict:
    """The store document, its layout checked (not its seal: that needs the key)."""
    try:
        doc = json.loads(data)
    except ValueError:
        raise _damaged(path, "not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("dockguard-creds") != FORMAT:
        raise _damaged(path, "not a dockguard credential store")
    key_id, entries = doc.get("key_id"), doc.get("entries")
    if not (key_id is None or _is_key_id(key_id)) or not isinstance(entries, dict):
        raise _damaged(path, "unexpected layout")
    for url, entry in entries.items():
        if not url or not isinstance(entry, dict):
            raise _damaged(path, "unexpected entry")
        live = set(entry) == {"nonce", "data"} and all(isinstance(v, str) for v in entry.values())
        orphan = set(entry) == {"orphan"} and _is_key_id(entry["orphan"])
        if not (live or orphan) or (key_id is None and not orphan):
            raise _damaged(path, "unexpected entry")
    if key_id is None and "seal" in doc:
        raise _damaged(path, "unexpected layout")
    return doc


def check_url(url) -> str:
    if not isinstance(url, str) or not url:
        raise CredsError("no credentials server URL")
    if len(url) > MAX_URL or "\0" in url:
        raise CredsError("invalid credentials server URL")
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        raise CredsError("invalid credentials server URL") from None
    return url


# --- the files ---------------------------------------------------------------------------

class Vault:
    """The key and store of one docker config directory, for the current user."""

    def __init__(self, directory: str | None = None) -> None:
        self.dir = directory or config_dir()
        self.key_path = os.path.join(self.dir, KEY_NAME)
        self.new_key_path = self.key_path + ".new"
        self.store_path = os.path.join(self.dir, STORE_NAME)
        self.tmp_path = os.path.join(self.dir, "." + STORE_NAME + ".tmp")
        self.lock_path = os.path.join(self.dir, LOCK_NAME)
        self.uid = os.geteuid()

    # -- file primitives

    def _check_dir(self) -> bool:
        """False if the directory does not exist; refuse one others can write to."""
        try:
            st = os.stat(self.dir)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise CredsError(f"cannot use {self.dir}: {exc.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeFile(f"{self.dir} is not a directory")
        if st.st_uid not in (self.uid, 0):
            raise UnsafeFile(f"{self.dir} is owned by uid {st.st_uid}, not by you (uid {self.uid})")
        if stat.S_IMODE(st.st_mode) & 0o022:
            raise UnsafeFile(f"{self.dir} is writable by group or others (mode "
                             f"{stat.S_IMODE(st.st_mode):04o}): run chmod go-w {self.dir}")
        return True

    def _read(self, path: str) -> bytes | None:
        """A private regular file of ours, or None if absent."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafeFile(f"{path} is a symbolic link: dockguard uses only a regular file "
                                 "there") from None
            raise CredsError(f"cannot read {path}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            mode = stat.S_IMODE(st.st_mode)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafeFile(f"{path} is not a regular file")
            if st.st_uid != self.uid:
                raise UnsafeFile(f"{path} is owned by uid {st.st_uid}, not by you (uid {self.uid}): "
                                 "refusing to use it")
            if mode & 0o077:
                raise UnsafeFile(f"{path} is accessible by group or others (mode {mode:04o}): "
                                 f"run chmod 600 {path}")
            if st.st_size > MAX_FILE:
                raise UnsafeFile(f"{path} is larger than {MAX_FILE} bytes: refusing to read it")
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def _read_key(self, path: str) -> Key | None:
        data = self._read(path)
        return None if data is None else parse_key(data, path)

    def _read_pending_key(self) -> Key | None:
        """aeskey.new, or None if absent or cut short (a writer killed while writing it, before
        the store named it); an unsafe one (owner, mode, symlink) is still refused."""
        data = self._read(self.new_key_path)
        if data is None:
            return None
        try:
            return parse_key(data, self.new_key_path)
        except CredsError:
            return None

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_fresh(self, path: str, data: bytes) -> None:
        """Create `path` anew: O_EXCL, 0600 whatever the umask, contents fsynced."""
        try:
            os.unlink(path)  # a leftover of a killed writer (we hold the exclusive lock)
        except FileNotFoundError:
            pass
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(fd)

    def _drop_stale_new_key(self) -> None:
        try:
            os.unlink(self.new_key_path)
        except FileNotFoundError:
            pass

    def _lock(self, exclusive: bool) -> int | None:
        """flock on the lock file; None for a reader that cannot create it (read-only dir)."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if not exclusive and exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                return None
            raise CredsError(f"cannot lock {self.lock_path}: {exc.strerror}") from None
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        return fd

    def _ensure_dir(self) -> None:
        if not self._check_dir():
            try:
                os.makedirs(self.dir, mode=0o700)
                os.chmod(self.dir, 0o700)  # whatever the umask
            except FileExistsError:
                pass
            except OSError as exc:
                raise CredsError(f"cannot create {self.dir}: {exc.strerror}") from None
            self._check_dir()

    # -- state

    def _load(self, repair: bool):
        """(key or None, entries, removed_key_id or None), verified.

        `repair` (writers, under the exclusive lock) finishes an interrupted key change or
        drops its leftover; readers only read.
        """
        raw = self._read(self.store_path)
        doc = parse_store(raw, self.store_path) if raw is not None else None
        key = self._read_key(self.key_path)
        if doc is None or doc["key_id"] is None:
            if repair and key is not None:
                self._drop_stale_new_key()
            return key, dict(doc["entries"]) if doc else {}, None
        kid = doc["key_id"]
        if key is None or key.id != kid:
            pending = self._read_pending_key()
            if pending is not None and pending.id == kid:
                verify_store(pending, doc, self.store_path)
                if repair:
                    os.replace(self.new_key_path, self.key_path)
                    self._fsync_dir()
                key = pending
            elif key is None:
                if repair:
                    self._drop_stale_new_key()
                entries = {url: {"orphan": e.get("orphan", kid)} for url, e in doc["entries"].items()}
                return None, entries, kid
            else:
                raise Tampered(f"{self.key_path} is not the key {self.store_path} was written with "
                               f"(key id {key.id}, the store needs {kid}): put the right key back, or "
                               "remove both files and run docker login again")
        elif repair:
            self._drop_stale_new_key()
        verify_store(key, doc, self.store_path)
        return key, dict(doc["entries"]), None

    def _commit(self, key: Key | None, entries: dict, key_is_new: bool) -> None:
        """Write the store (and a new key) in the crash-safe order described above."""
        hook = _crash_hook or (lambda step: None)
        doc = {"dockguard-creds": FORMAT, "key_id": key.id if key else None, "entries": entries}
        if key is not None:
            seal_store(key, doc)
        if key_is_new:
            self._write_fresh(self.new_key_path, dump_key(key))
            hook("key-written")
        self._write_fresh(self.tmp_path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("ascii"))
        hook("store-written")
        os.replace(self.tmp_path, self.store_path)
        self._fsync_dir()
        hook("store-replaced")
        if key_is_new:
            os.replace(self.new_key_path, self.key_path)
            self._fsync_dir()
            hook("key-replaced")

    def _removed(self, url: str) -> KeyRemoved:
        return KeyRemoved(f"{KEY_REMOVED} (the login for {url} was encrypted with a key no longer in "
                          f"{self.key_path})")

    # -- the protocol's operations

    def store(self, url: str, username: str, secret: str) -> None:
        url = check_url(url)
        self._ensure_dir()
        fd = self._lock(True)
        try:
            key, entries, _ = self._load(repair=True)
            key_is_new = key is None
            if key_is_new:
                key = new_key()
            entries[url] = seal_entry(key, url, username, secret)
            self._commit(key, entries, key_is_new)
        finally:
            os.close(fd)

    def _read_state(self):
        if not self._check_dir():
            return None, {}, None
        fd = self._lock(False)
        try:
            return self._load(repair=False)
        finally:
            if fd is not None:
                os.close(fd)

    def get(self, url: str) -> tuple[str, str]:
        url = check_url(url)
        key, entries, _ = self._read_state()
        entry = entries.get(url)
        if entry is None:
            raise NotFound()
        if "orphan" in entry:
            raise self._removed(url)
        return open_entry(key, url, entry, self.store_path)

    def erase(self, url: str) -> None:
        url = check_url(url)
        if not self._check_dir():
            raise NotFound()
        fd = self._lock(True)
        try:
            key, entries, _ = self._load(repair=True)
            if url not in entries:
                raise NotFound()
            del entries[url]
            self._commit(key, entries, False)
        finally:
            os.close(fd)

    def list(self) -> dict[str, str]:
        """{server URL: username} of every login that opens (orphans are left out)."""
        key, entries, _ = self._read_state()
        return {url: open_entry(key, url, e, self.store_path)[0]
                for url, e in sorted(entries.items()) if "orphan" not in e}

    # -- administration

    def rotate(self) -> dict:
        """Re-encrypt every login under a new key; returns old and new key ids and a count."""
        if not self._check_dir():
            return {"old_key_id": None, "new_key_id": None, "reencrypted": 0}
        fd = self._lock(True)
        try:
            key, entries, removed = self._load(repair=True)
            if key is None:
                if removed or any("orphan" in e for e in entries.values()):
                    raise KeyRemoved(f"{KEY_REMOVED} (there is nothing to re-encrypt: the logins in "
                                     f"{self.store_path} were encrypted with a key no longer in "
                                     f"{self.key_path})")
                return {"old_key_id": None, "new_key_id": None, "reencrypted": 0}
            fresh = new_key()
            out = {}
            for url, entry in entries.items():
                if "orphan" in entry:
                    out[url] = entry
                else:
                    username, secret = open_entry(key, url, entry, self.store_path)
                    out[url] = seal_entry(fresh, url, username, secret)
            self._commit(fresh, out, True)
            return {"old_key_id": key.id, "new_key_id": fresh.id,
                    "reencrypted": sum(1 for e in out.values() if "orphan" not in e)}
        finally:
            os.close(fd)

    def status(self) -> dict:
        """Registries (with usernames, never secrets), the key's id and age, the paths."""
        key, entries, removed = self._read_state()
        regs = []
        for url, entry in sorted(entries.items()):
            if "orphan" in entry:
                regs.append({"server": url, "username": None, "state": "key-removed"})
            else:
                regs.append({"server": url, "username": open_entry(key, url, entry, self.store_path)[0],
                             "state": "ok"})
        now = int(time.time())
        return {
            "config_dir": self.dir,
            "key": {"path": self.key_path, "present": key is not None,
                    "id": key.id if key else None,
                    "created": key.created if key else None,
                    "age_seconds": max(0, now - key.created) if key else None,
                    "removed_key_id": removed},
            "store": {"path": self.store_path, "exists": os.path.exists(self.store_path)},
            "registries": regs,
        }
