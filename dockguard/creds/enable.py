"""Turning the helper on for a user, and finding logins stored in plain text.

- `plaintext_auths(config_path)`: the registries whose password or token sits in
  config.json's `auths` (base64 is not encryption): what `doctor` reports.
- `enable(config_dir)`: set `"credsStore": "dockguard"` in config.json and move those
  plain-text logins into the encrypted store (store first, then strip config.json, so a
  crash in between loses nothing).
- `enable_for_user(home)`: the same for another user's `~/.docker`, done by a child process
  that has dropped to that user's uid and gids first: root never writes into a directory a
  user controls (symlinks, planted files), and every file created is the user's own.
- `install_helper(bin_dir)`: the `docker-credential-dockguard` program the CLI finds on PATH,
  with an `-I -S` shebang (no site processing: it runs on every push and pull).
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import stat
import sys

from dockguard import util
from dockguard.creds.store import CredsError, UnsafeFile, Vault

CONFIG_NAME = "config.json"
STORE_NAME = "dockguard"
HELPER_NAME = "docker-credential-dockguard"
SECRET_FIELDS = frozenset(("auth", "password", "identitytoken", "registrytoken"))

HELPER_TEMPLATE = """#!{py} -IS
# {name}: the docker CLI's credential helper (dockguard), installed by `dockguard install --creds`.
import sys
sys.path[:0] = {paths!r}
from dockguard.creds.helper import main
sys.exit(main())
"""


def read_config(path: str) -> dict:
    """config.json as a dict ({} if absent); a clear error if it is not a JSON object."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CredsError(f"cannot read {path}: {exc.strerror}") from None
    if not data.strip():
        return {}
    try:
        doc = json.loads(data)
    except ValueError:
        raise CredsError(f"{path} is not valid JSON: fix it (the docker CLI cannot read it either)") from None
    if not isinstance(doc, dict):
        raise CredsError(f"{path} is not a JSON object")
    return doc


def _secret_fields(entry) -> list[str]:
    if not isinstance(entry, dict):
        return []
    return [k for k, v in entry.items() if k.lower() in SECRET_FIELDS and isinstance(v, str) and v]


def plaintext_auths(config_path: str) -> list[str]:
    """Registries whose login config.json holds readable (base64 or clear) in `auths`."""
    auths = read_config(config_path).get("auths")
    if not isinstance(auths, dict):
        return []
    return sorted(url for url, entry in auths.items() if _secret_fields(entry))


def _decode_login(url: str, entry: dict) -> tuple[str, str]:
    """(username, secret) as the CLI's file store reads an `auths` entry."""
    fields = {k.lower(): v for k, v in entry.items() if isinstance(v, str)}
    if fields.get("identitytoken"):
        return "<token>", fields["identitytoken"]
    if fields.get("auth"):
        try:
            user, sep, password = base64.b64decode(fields["auth"], validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError):
            raise CredsError(f"config.json: the auth of {url} is not valid base64 of user:password; "
                             "log in to it again") from None
        if not sep or not user:
            raise CredsError(f"config.json: the auth of {url} has no user:password; log in to it again")
        return user, password
    if fields.get("username") and fields.get("password"):
        return fields["username"], fields["password"]
    raise CredsError(f"config.json: the login for {url} has only a registry token, which the "
                     "credential-helper protocol cannot store; log in to it again")


def write_config(path: str, doc: dict) -> None:
    """As the CLI saves it: tab-indented JSON, 0600, temp file + fsync + rename."""
    util.atomic_write(path, json.dumps(doc, indent="\t") + "\n", 0o600)


def enable(config_dir: str, force: bool = False) -> dict:
    """credsStore = dockguard in `config_dir`/config.json; plain-text logins moved into the store."""
    vault = Vault(config_dir)
    vault._ensure_dir()
    path = os.path.join(config_dir, CONFIG_NAME)
    if os.path.islink(path):
        raise UnsafeFile(f"{path} is a symbolic link: refusing to rewrite it")
    doc = read_config(path)
    previous = doc.get("credsStore")
    if previous not in (None, "", STORE_NAME) and not force:
        raise CredsError(f"{path} already uses the credential store {previous!r}: its logins would "
                         "become unreachable; log out first, or use --force")
    auths = doc.get("auths") if isinstance(doc.get("auths"), dict) else {}
    moved = []
    for url in sorted(auths):
        entry = auths[url]
        if not _secret_fields(entry):
            continue
        username, secret = _decode_login(url, entry)
        vault.store(url, username, secret)
        moved.append(url)
    for url in moved:
        auths[url] = {k: v for k, v in auths[url].items() if k.lower() not in SECRET_FIELDS | {"username"}}
    doc["credsStore"] = STORE_NAME
    write_config(path, doc)
    return {"config": path, "credsStore": STORE_NAME, "previous": previous or None, "migrated": moved}



def _as_user(uid: int, gid: int, fn, *args) -> dict:
    """Run fn(*args) in a child that has dropped to uid/gid; its result (or error) comes back."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            result = {"ok": fn(*args)}
        except CredsError as exc:
            result, code = {"error": str(exc)}, 1
        except BaseException as exc:  # noqa: BLE001 - reported by the parent
            result, code = {"error": f"internal error ({type(exc).__name__})"}, 1
        try:
            os.write(w, json.dumps(result).encode())
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    try:
        result = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        result = {}
    if "ok" not in result:
        raise CredsError(result.get("error", "the unprivileged child failed"))
    return result["ok"]


def enable_for_user(home: str, uid: int | None = None, force: bool = False) -> dict:
    """enable() for `home`/.docker, as `uid` (default: the owner of `home`)."""
    try:
        st = os.stat(home)
    except OSError as exc:
        raise CredsError(f"home directory {home}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise CredsError(f"home directory {home} is not a directory")
    uid = st.st_uid if uid is None else uid
    config_dir = os.path.join(home, ".docker")
    if uid == os.geteuid():
        return enable(config_dir, force)
    if os.geteuid() != 0:
        raise CredsError(f"{home} belongs to uid {uid}: run as that user or as root")
    import pwd
    try:
        gid = pwd.getpwuid(uid).pw_gid
    except KeyError:
        gid = st.st_gid
    return _as_user(uid, gid, enable, config_dir, force)


def enable_users(root: str, users: list[str], dry_run: bool = False) -> int:
    """`dockguard install --creds USER`: enable the helper in each user's ~/.docker (0 or 1)."""
    import pwd
    rc = 0
    for user in users:
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            print(f"dockguard install: --creds {user}: no such user", file=sys.stderr)
            rc = 1
            continue
        home = os.path.join(root, pw.pw_dir.lstrip("/"))
        config = os.path.join(home, ".docker", CONFIG_NAME)
        try:
            if dry_run:
                plain = plaintext_auths(config) if os.path.isfile(config) else []
                print(f'dry run: would set "credsStore": "{STORE_NAME}" in {config}'
                      + (f" and encrypt the plain-text logins of {', '.join(plain)}" if plain else ""))
                continue
            res = enable_for_user(home, pw.pw_uid)
        except CredsError as exc:
            print(f"dockguard install: --creds {user}: {exc}", file=sys.stderr)
            rc = 1
            continue
        print(f'{res["config"]}: "credsStore": "{STORE_NAME}" (user {user})')
        for url in res["migrated"]:
            print(f"  moved the plain-text login for {url} into the encrypted store")
    return rc


def helper_script(python: str | None = None) -> str:
    """The helper program's text: this interpreter, -I -S, with our package and cryptography on sys.path."""
    import cryptography
    from hookbin.install import real_python
    py = real_python(python)
    if len(py) + 6 > 127:
        raise CredsError(f"interpreter path too long for a shebang: {py}")
    pkg = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    crypto = os.path.dirname(os.path.dirname(os.path.abspath(cryptography.__file__)))
    paths = [pkg] + ([crypto] if crypto != pkg else [])
    return HELPER_TEMPLATE.format(py=py, name=HELPER_NAME, paths=paths)


def install_helper(bin_dir: str, python: str | None = None) -> str:
    """Write `docker-credential-dockguard` into bin_dir (0755, atomically)."""
    from hookbin.install import write_executable
    os.makedirs(bin_dir, mode=0o755, exist_ok=True)
    path = os.path.join(bin_dir, HELPER_NAME)
    write_executable(path, helper_script(python))
    return path

