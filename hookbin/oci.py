"""OCI plumbing shared by the wrapper and the hook programs: state, config.json, setns, mount.

Stdlib only (the hook programs and the wrapper run under `python -I -S`). Pure helpers take
and return plain data; the few syscalls are thin ctypes shims.
"""
from __future__ import annotations

import os

from dockguard import util

CLONE_NEWNS = util.CLONE_NEWNS
CLONE_NEWNET = util.CLONE_NEWNET
MS_BIND = 4096

HOOK_PHASES = ("prestart", "poststart", "poststop")


class OciError(util.DockguardError):
    """Bad OCI state or bundle, or a failed namespace/mount operation."""


# --- state on stdin -----------------------------------------------------------------------

def parse_state(text: str) -> dict:
    """The OCI state JSON runc writes to a hook's stdin, checked for what hooks rely on."""
    try:
        state = loads(text)
    except ValueError as exc:
        raise OciError(f"OCI state on stdin is not valid JSON: {exc}") from None
    if not isinstance(state, dict):
        raise OciError("OCI state on stdin is not a JSON object")
    for key in ("id", "status", "bundle"):
        if not isinstance(state.get(key), str) or not state[key]:
            raise OciError(f"OCI state on stdin lacks {key!r}")
    pid = state.get("pid", 0)
    if isinstance(pid, bool) or not isinstance(pid, int) or pid < 0:
        raise OciError(f"OCI state on stdin has a bad pid: {pid!r}")
    state.setdefault("pid", 0)
    return state


def read_state(stream) -> dict:
    return parse_state(stream.read())


# --- config.json --------------------------------------------------------------------------

def add_hooks(config: dict, spec: dict) -> dict:
    """A copy of `config` with the spec's hooks appended after any already there.

    Every other field (and every other hook phase, e.g. createRuntime) is kept as is.
    """
    out = dict(config)
    hooks = dict(out.get("hooks") or {})
    for phase in HOOK_PHASES:
        extra = spec.get(phase) or []
        if extra:
            hooks[phase] = list(hooks.get(phase) or []) + [dict(h) for h in extra]
    if hooks:
        out["hooks"] = hooks
    return out


def _bad_constant(name):
    raise ValueError(f"{name} is not JSON")


class _ScanContext:
    """What json's C scanner reads from its decoder: json.loads's defaults."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_bad_constant)


def loads(text):
    """json.loads without importing `json`, whose `re` costs dockguard-runtime ~8 ms of CPU
    on every container start: the very C scanner json.loads uses, on the same defaults.
    Whatever it does not take whole (trailing data, no C scanner) goes to json.loads, for
    the same result or the same error."""
    try:
        from _json import make_scanner
        s = text.decode("utf-8") if isinstance(text, bytes) else text
        s = s.strip(" \t\n\r")
        obj, end = make_scanner(_ScanContext)(s, 0)
        if end == len(s):
            return obj
    except (ImportError, UnicodeDecodeError, ValueError, StopIteration, RecursionError):
        pass
    import json
    return json.loads(text)


def _not_json(o):
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def dumps(obj) -> str:
    """json.dumps(obj, separators=(",", ":")) without importing `json` (see loads): json's own
    C encoder, with json.dumps's defaults (ASCII, circular check, NaN as json writes it)."""
    try:
        from _json import encode_basestring_ascii, make_encoder
    except ImportError:
        import json
        return json.dumps(obj, separators=(",", ":"))
    return "".join(make_encoder({}, _not_json, encode_basestring_ascii, None, ":", ",",
                                False, False, True)(obj, 0))


def read_json(path: str):
    with open(path, "rb") as f:
        return loads(f.read())


def write_json_atomic(path: str, obj, durable: bool = True) -> None:
    """config.json (or any JSON) written atomically, keeping the replaced file's mode.
    `durable=False` skips the fsync, for files read at once and never after a crash (a
    bundle's config.json, which runc reads next and dockerd writes anew at every start)."""
    util.atomic_write(os.path.abspath(path), dumps(obj), mode=None, durable=durable)


def bundle_config(bundle: str) -> dict:
    try:
        config = read_json(os.path.join(bundle, "config.json"))
    except (OSError, ValueError) as exc:
        raise OciError(f"cannot read {bundle}/config.json: {exc}") from None
    if not isinstance(config, dict):
        raise OciError(f"{bundle}/config.json is not a JSON object")
    return config


def rootfs_path(bundle: str, config: dict) -> str:
    """The container's root filesystem on the host (root.path, relative to the bundle)."""
    root = (config.get("root") or {}).get("path")
    if not isinstance(root, str) or not root:
        raise OciError(f"{bundle}/config.json has no root.path")
    return root if os.path.isabs(root) else os.path.join(bundle, root)


# --- syscalls -----------------------------------------------------------------------------

def _check(ret: int, what: str) -> None:
    try:
        util.check_errno(ret, what)
    except OSError as exc:
        raise OciError(exc.strerror) from None


libc = util.libc


def ns_path(pid: int, kind: str) -> str:
    return f"/proc/{pid}/ns/{kind}"


def open_ns(pid: int, kind: str) -> int:
    try:
        return os.open(ns_path(pid, kind), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise OciError(f"cannot open {kind} namespace of pid {pid}: {exc.strerror}") from None


def setns(fd: int, nstype: int, what: str) -> None:
    """Move this (single-threaded) process into the namespace behind `fd`."""
    _check(libc().setns(fd, nstype), f"setns into {what}")


def bind_mount(source: str, target: str) -> None:
    _check(libc().mount(source.encode(), target.encode(), None, MS_BIND, None),
           f"bind-mount {source} on {target}")
