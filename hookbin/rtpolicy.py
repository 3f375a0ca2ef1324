"""The plugin's policy, as dockguard-runtime needs it on every `create`: rule levels and lists.

The runtime judges with the plugin's rules and the plugin's TOML policy (`--policy FILE`, else
/etc/dockguard/policy.toml when it exists, else the built-in default). Compiling it costs what
the plugin pays once at start: `tomllib`, `dataclasses`, every rule module, ~40 ms. The runtime
pays it on every container start, so the compiled result (levels and lists, plain JSON) is kept
in a root-only cache directory, keyed by the identity of the policy file, of the built-in
default and of the modules that compile it (device, inode, size, mtime and ctime, in
nanoseconds): any edit or replacement (an upgrade) changes the key and the next `create`
compiles again. A policy that cannot be read,
is not root's alone (hookbin/trust.py, as for hook-specs), or does not compile fails closed.
"""
from __future__ import annotations

import os

from dockguard import util
from hookbin import oci, trust

DEFAULT_POLICY_PATH = "/etc/dockguard/policy.toml"
CACHE_DIR = "/run/dockguard/runtime-policy"
CACHE_VERSION = 2  # 2: exceptions
PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILTIN = os.path.join(PKG_ROOT, "authz", "default_policy.toml")
# What decides the compiled levels and lists besides the files: part of the cache key.
CODE = tuple(os.path.join(PKG_ROOT, "authz", *p) for p in (
    ("policy.py",), ("context.py",), ("rules", "__init__.py"), ("rules", "capabilities.py"),
    ("rules", "devices.py"), ("rules", "mounts.py"), ("exceptions.py",), ("rules", "cis.py"),
    ("cis_policy.toml",)))


class PolicyError(util.DockguardError):
    """The policy cannot be used: every create is refused (fail closed)."""


class RuntimePolicy:
    """Levels by rule id and the lists, as plain data (a plain class: no `dataclasses`)."""
    __slots__ = ("levels", "lists", "source", "exceptions")

    def __init__(self, levels: dict, lists, source: str, exceptions=()):
        self.levels, self.lists, self.source = levels, lists, source
        self.exceptions = exceptions  # authz/exceptions.py entries, matched as the plugin does

    def level(self, rule_id: str) -> str:
        return self.levels.get(rule_id, "off")


class ListsView:
    """What rules read as `ctx.lists`: the policy's frozensets of strings, by name."""

    def __init__(self, values: dict):
        for k, v in values.items():
            setattr(self, k, frozenset(v))


def _key(st) -> list:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def policy_path(explicit: str | None) -> str | None:
    """The file to read: the one given, else the default one if it exists, else none."""
    if explicit:
        return explicit
    return DEFAULT_POLICY_PATH if os.path.lexists(DEFAULT_POLICY_PATH) else None


def compile_view(path: str | None) -> dict:
    """The slow path: the plugin's own loader, reduced to plain JSON-able data."""
    from authz import policy as authz_policy
    try:
        pol = authz_policy.load(path)
    except (authz_policy.PolicyError, OSError) as exc:
        raise PolicyError(str(exc)) from None
    lists = {}
    for name in type(pol.lists).__slots__:
        value = getattr(pol.lists, name)
        if isinstance(value, frozenset) and all(isinstance(x, str) for x in value):
            lists[name] = sorted(value)
    return {"levels": dict(pol.levels), "lists": lists,
            "exceptions": [e.as_dict() for e in pol.exceptions]}


def _cache_name(path: str | None) -> str:
    """One cache file per policy path. crc32, not hashlib (whose import costs the runtime
    milliseconds): a collision only makes two policies recompile in turn, since the key holds
    the policy file's identity."""
    import binascii
    return f"policy-{binascii.crc32((path or '<built-in>').encode()):08x}.json"


def _open_cache_dir(create: bool) -> int | None:
    """An fd for the cache dir if it is root's alone (hookbin.trust); created when asked."""
    try:
        return trust.open_trusted(CACHE_DIR, want="dir")[0]
    except trust.Untrusted:
        if not create:
            return None
    try:
        os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
        return trust.open_trusted(CACHE_DIR, want="dir")[0]
    except (OSError, trust.Untrusted):
        return None


def _read_cache(name: str, key: list) -> dict | None:
    dfd = _open_cache_dir(create=False)
    if dfd is None:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return None
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if trust.judge(name, st.st_uid, st.st_mode, last=True) is not None:
            return None
        with os.fdopen(fd, "rb") as f:
            doc = oci.loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("version") != CACHE_VERSION or doc.get("key") != key:
        return None
    return doc


def _write_cache(name: str, doc: dict) -> None:
    """Best effort: a cache that cannot be written only costs the next create its speed."""
    import json
    dfd = _open_cache_dir(create=True)
    if dfd is None:
        return
    try:
        util.atomic_write(name, json.dumps(doc), 0o600, durable=False, dir_fd=dfd)
        _prune(dfd, keep=name)
    except OSError:
        pass
    finally:
        os.close(dfd)


MAX_CACHED = 32


def _prune(dfd: int, keep: str) -> None:
    """Keep the cache small (policies of test runs come and go): drop the oldest entries."""
    rfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dfd)  # dfd is O_PATH
    try:
        names = [n for n in os.listdir(rfd) if n != keep]
    finally:
        os.close(rfd)
    if len(names) < MAX_CACHED:
        return
    aged = []
    for n in names:
        try:
            aged.append((os.stat(n, dir_fd=dfd, follow_symlinks=False).st_mtime_ns, n))
        except OSError:
            pass
    for _, n in sorted(aged)[:len(aged) - MAX_CACHED // 2]:
        try:
            os.unlink(n, dir_fd=dfd)
        except OSError:
            pass


def load(explicit: str | None, rule_ids) -> RuntimePolicy:
    """The policy for this create; PolicyError when it cannot be used (the caller refuses)."""
    path = policy_path(explicit)
    key = [CACHE_VERSION]
    if path is not None:
        try:
            fd, resolved = trust.open_trusted(path)
        except trust.Untrusted as exc:
            raise PolicyError(f"policy {path}: {exc}") from None
        try:
            key.append(_key(os.fstat(fd)))
        finally:
            os.close(fd)
        path = resolved
    try:
        # the built-in default and the code that compiles it (an upgrade changes them)
        for f in (BUILTIN,) + CODE:
            key.append(_key(os.stat(f)))
    except OSError as exc:
        raise PolicyError(f"built-in policy {exc.filename}: {exc.strerror}") from None
    name = _cache_name(path)
    doc = _read_cache(name, key)
    if doc is None or not all(r in doc.get("levels", {}) for r in rule_ids):
        doc = compile_view(path)
        doc.update(version=CACHE_VERSION, key=key)
        _write_cache(name, doc)
    from authz import exceptions
    return RuntimePolicy(doc["levels"], ListsView(doc["lists"]), path or "built-in default",
                         exceptions.from_dicts(doc.get("exceptions")))
