"""The hook-spec: its shape, the guide's validation rules, and merging.

This is the one place that knows the guide's rules for hooks ("创建容器使用hook-spec"); the
runtime wrapper and the AuthZ plugin both call it, so a spec refused at `docker create` is
refused for the same reason at container start. Everything here is a plain function over
plain data, except `read_spec_file` (the one edge that reads a spec) and the hook-file checks
(which must look at the file the hook path names).

A spec is `{"prestart": [hook...], "poststart": [...], "poststop": [...]}`, each hook
`{"path": str, "args": [str], "env": [str], "timeout": int}` (timeout optional).
"""
from __future__ import annotations

import json
import os
import stat

PHASES = ("prestart", "poststart", "poststop")
HOOK_KEYS = ("path", "args", "env", "timeout")
REQUIRED_HOOK_KEYS = ("path", "args", "env")
TIMEOUT_MIN, TIMEOUT_MAX = 1, 120
MAX_SPEC_BYTES = 256 * 1024
LABEL = "dockguard.hook-spec"
DEFAULT_DOCKER_ROOT = "/var/lib/docker"


class SpecError(Exception):
    """A spec (or a set of specs) was refused; `problems` lists every fault found."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def hooks_dir(docker_root: str) -> str:
    """`<Docker Root Dir>/hooks`: the only place hook programs may live (guide, note 1)."""
    return os.path.join(docker_root, "hooks")


# --- the shape (pure) -------------------------------------------------------------------

def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def parse_spec_text(text: str, source: str) -> dict:
    """JSON text -> spec dict; a syntax error names the source, line and column."""
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise SpecError([f"{source}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"]) from None
    except ValueError as exc:
        raise SpecError([f"{source}: invalid JSON: {exc}"]) from None
    problems = check_shape(doc)
    if problems:
        raise SpecError([f"{source}: {p}" for p in problems])
    return normalize(doc)


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def check_hook_shape(hook, where: str) -> list[str]:
    """The guide's per-hook rules that need no filesystem: fields, types, timeout range."""
    if not isinstance(hook, dict):
        return [f"{where}: must be an object with path, args, env (got {type(hook).__name__})"]
    problems = []
    for key in hook:
        if key not in HOOK_KEYS:
            problems.append(f"{where}: unknown field {key!r} (allowed: {', '.join(HOOK_KEYS)})")
    for key in REQUIRED_HOOK_KEYS:
        if key not in hook:
            problems.append(f"{where}.{key}: missing (path, args and env are required)")
    path = hook.get("path")
    if "path" in hook:
        if not isinstance(path, str) or not path:
            problems.append(f"{where}.path: must be a non-empty string")
        elif "\0" in path:
            problems.append(f"{where}.path: contains a NUL byte")
        elif not os.path.isabs(path):
            problems.append(f"{where}.path: {path!r} is not an absolute path")
    for key in ("args", "env"):
        if key in hook:
            if not _is_str_list(hook[key]):
                problems.append(f"{where}.{key}: must be a list of strings")
            elif any("\0" in v for v in hook[key]):
                problems.append(f"{where}.{key}: contains a NUL byte")
    if _is_str_list(hook.get("env")):
        for i, entry in enumerate(hook["env"]):
            if "=" not in entry or entry.startswith("="):
                problems.append(f"{where}.env[{i}]: {entry!r} is not KEY=VALUE")
    if "timeout" in hook:
        problems += check_timeout(hook["timeout"], f"{where}.timeout")
    return problems


def check_timeout(value, where: str) -> list[str]:
    """An integer in [1, 120]: no floats, no bools, no strings (guide: "不接受浮点数")."""
    if isinstance(value, bool) or not isinstance(value, int):
        kind = {bool: "a boolean", float: "a float", str: "a string", list: "a list", dict: "an object"}
        got = "null" if value is None else f"{kind.get(type(value), type(value).__name__)}: {json.dumps(value)}"
        return [f"{where}: must be an integer in [{TIMEOUT_MIN}, {TIMEOUT_MAX}] (got {got})"]
    if not TIMEOUT_MIN <= value <= TIMEOUT_MAX:
        return [f"{where}: {value} is out of range [{TIMEOUT_MIN}, {TIMEOUT_MAX}]"]
    return []


def check_shape(doc) -> list[str]:
    """Problems with a decoded spec document's shape (empty list: well-formed)."""
    if not isinstance(doc, dict):
        return [f"a hook-spec must be a JSON object with {', '.join(PHASES)} (got {type(doc).__name__})"]
    problems = []
    for key in doc:
        if key not in PHASES:
            problems.append(f"unknown key {key!r} (allowed: {', '.join(PHASES)})")
    for phase in PHASES:
        hooks = doc.get(phase)
        if hooks is None:
            continue
        if not isinstance(hooks, list):
            problems.append(f"{phase}: must be a list of hooks")
            continue
        for i, hook in enumerate(hooks):
            problems += check_hook_shape(hook, f"{phase}[{i}]")
    return problems


def normalize(doc: dict) -> dict:
    """A well-formed document as a spec with all three phases present (null -> [])."""
    return {phase: [dict(h) for h in (doc.get(phase) or [])] for phase in PHASES}


def merge(specs: list[dict]) -> dict:
    """Concatenate specs phase by phase, in order: the guide's manual merge, done for you."""
    merged = {phase: [] for phase in PHASES}
    for spec in specs:
        for phase in PHASES:
            merged[phase].extend(dict(h) for h in spec.get(phase) or [])
    return merged


def is_empty(spec: dict) -> bool:
    return not any(spec.get(phase) for phase in PHASES)


def split_label(value: str) -> list[str]:
    """`/a.json,/b.json` -> paths, in order; an empty entry is a fault, not skipped silently."""
    if not isinstance(value, str) or not value.strip():
        raise SpecError([f"label {LABEL}: empty value (expected /abs/spec.json[,/abs/other.json])"])
    paths = [p.strip() for p in value.split(",")]
    if any(not p for p in paths):
        raise SpecError([f"label {LABEL}: empty entry in {value!r}"])
    return paths


# --- the hook files (look at the filesystem, change nothing) ------------------------------

def _within(path: str, directory: str) -> bool:
    """Strictly inside `directory`, by path components (`hooksX` is not inside `hooks`)."""
    path_parts = os.path.normpath(path).split(os.sep)
    dir_parts = os.path.normpath(directory).split(os.sep)
    return len(path_parts) > len(dir_parts) and path_parts[: len(dir_parts)] == dir_parts


def check_hook_file(path: str, docker_root: str, where: str) -> list[str]:
    """Guide notes 1, 2, 5, plus iSulad's ownership rule, for one absolute hook path."""
    root_hooks = os.path.realpath(hooks_dir(docker_root))
    try:
        resolved = os.path.realpath(path, strict=True)
    except OSError as exc:
        return [f"{where}.path: {path!r} cannot be resolved: {exc.strerror or exc}"]
    if not _within(resolved, root_hooks):
        shown = "" if resolved == path else f" (resolves to {resolved!r})"
        return [f"{where}.path: {path!r}{shown} is outside the hooks directory {root_hooks}"]
    try:
        st = os.stat(resolved)
    except OSError as exc:
        return [f"{where}.path: {path!r}: {exc.strerror or exc}"]
    if not stat.S_ISREG(st.st_mode):
        return [f"{where}.path: {path!r} is not a regular file"]
    problems = []
    mode = stat.S_IMODE(st.st_mode)
    if not mode & stat.S_IXUSR:
        problems.append(f"{where}.path: {path!r} is not executable (mode {mode:04o})")
    if st.st_uid != 0:
        problems.append(f"{where}.path: {path!r} is owned by uid {st.st_uid}, not root")
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        problems.append(f"{where}.path: {path!r} is writable by group or others (mode {mode:04o})")
    return problems


def check_hook_files(spec: dict, docker_root: str) -> list[str]:
    problems = []
    for phase in PHASES:
        for i, hook in enumerate(spec.get(phase) or []):
            problems += check_hook_file(hook["path"], docker_root, f"{phase}[{i}]")
    return problems


# --- the edge: reading a spec file --------------------------------------------------------

def read_spec_file(path: str) -> str:
    """The spec file's text: absolute path, regular file, at most MAX_SPEC_BYTES, UTF-8."""
    if not isinstance(path, str) or not path:
        raise SpecError(["hook-spec path is empty"])
    if not os.path.isabs(path):
        raise SpecError([f"{path}: hook-spec path must be absolute"])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SpecError([f"{path}: cannot open hook-spec: {exc.strerror or exc}"]) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SpecError([f"{path}: hook-spec is not a regular file"])
        if st.st_size > MAX_SPEC_BYTES:
            raise SpecError([f"{path}: hook-spec is {st.st_size} bytes, more than {MAX_SPEC_BYTES}"])
        data = os.read(fd, MAX_SPEC_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError([f"{path}: hook-spec is more than {MAX_SPEC_BYTES} bytes"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([f"{path}: hook-spec is not UTF-8 (byte {exc.start})"]) from None


def load_spec(path: str, docker_root: str = DEFAULT_DOCKER_ROOT) -> dict:
    """Read, parse and fully validate one spec file; SpecError lists every fault."""
    spec = parse_spec_text(read_spec_file(path), path)
    problems = check_hook_files(spec, docker_root)
    if problems:
        raise SpecError([f"{path}: {p}" for p in problems])
    return spec


def load_specs(paths: list[str], docker_root: str = DEFAULT_DOCKER_ROOT) -> dict:
    """Load several specs and merge them in order; faults of all files are reported together."""
    specs, problems = [], []
    for path in paths:
        try:
            specs.append(load_spec(path, docker_root))
        except SpecError as exc:
            problems += exc.problems
    if problems:
        raise SpecError(problems)
    return merge(specs)


def check_label(value: str, docker_root: str) -> list[str]:
    """Problems with a `dockguard.hook-spec` label value (empty list: acceptable).

    For the AuthZ plugin: the same checks the runtime wrapper applies at container start.
    """
    try:
        load_specs(split_label(value), docker_root)
    except SpecError as exc:
        return exc.problems
    return []
