"""The hook-spec: its shape, the guide's validation rules, and merging.

This is the one place that knows the guide's rules for hooks ("创建容器使用hook-spec"); the
runtime wrapper and the AuthZ plugin both call it, so a spec refused at `docker create` is
refused for the same reason at container start. Everything here is a plain function over
plain data, except `read_spec_file` (the one edge that reads a spec) and the hook-file checks
(which must look at the file the hook path names).

Beyond the guide, because hooks run as root and the API's users are not trusted (issue 7):
a spec is read only from a place the host grants (root's alone from `/` down, in the
policy's spec_dirs, never under Docker's root; see hookbin/trust.py), each hook's `env`
comes from an allow-list, and the arguments of dockguard's own hook programs are judged by
the policy (hookbin/policy.py) with the programs' own checks.

A spec is `{"prestart": [hook...], "poststart": [...], "poststop": [...]}`, each hook
`{"path": str, "args": [str], "env": [str], "timeout": int}` (timeout optional).
"""
from __future__ import annotations

import os
import stat

from dockguard import util
from hookbin import policy as hookpolicy
from hookbin import trust
from hookbin.policy import HookPolicy

PHASES = ("prestart", "poststart", "poststop")
HOOK_KEYS = ("path", "args", "env", "timeout")
REQUIRED_HOOK_KEYS = ("path", "args", "env")
TIMEOUT_MIN, TIMEOUT_MAX = 1, 120
MAX_SPEC_BYTES = 256 * 1024
LABEL = util.HOOK_SPEC_LABEL
DEFAULT_DOCKER_ROOT = util.DEFAULT_DOCKER_ROOT
# dockguard's own hook programs (installed name -> module): their arguments are judged too.
SHIPPED = {
    "network-hook": "hookbin.hooks.network_hook",
    "lxcfs-hook": "hookbin.hooks.lxcfs_hook",
    "docker-hooks": "hookbin.hooks.docker_hooks",
}


class SpecError(util.DockguardError):
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
    import json  # not at the top: dockguard-runtime imports this module on every create
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


def _unknown_keys(d: dict, allowed, what: str) -> list[str]:
    return [f"{what} {k!r} (allowed: {', '.join(allowed)})" for k in d if k not in allowed]


def check_hook_shape(hook, where: str) -> list[str]:
    """The guide's per-hook rules that need no filesystem: fields, types, timeout range."""
    if not isinstance(hook, dict):
        return [f"{where}: must be an object with path, args, env (got {type(hook).__name__})"]
    problems = _unknown_keys(hook, HOOK_KEYS, f"{where}: unknown field")
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
        import json
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
    problems = _unknown_keys(doc, PHASES, "unknown key")
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


# --- env and arguments (pure) --------------------------------------------------------------

def check_env(env: list[str], policy: HookPolicy, where: str) -> list[str]:
    """Each `env` entry's name on the policy's allow-list, and its value of the expected kind.

    An allow-list, not a block-list: a hook runs as root, and LD_PRELOAD, PYTHONPATH,
    BASH_ENV, GCONV_PATH and their like make it load or run whatever they name.
    """
    problems = []
    for i, entry in enumerate(env):
        name, _, value = entry.partition("=")
        if name not in policy.env_allow:
            problems.append(f"{where}.env[{i}]: {name} is not on the allow-list "
                            f"({', '.join(sorted(policy.env_allow))}; policy [hookspec] env_allow)")
        elif name in hookpolicy.BUILTIN_ENV:
            why = hookpolicy.check_env_value(name, value)
            if why:
                problems.append(f"{where}.env[{i}]: {why}")
    return problems


def shipped_module(program: str):
    """The module of one of dockguard's own hook programs (by installed name), or None."""
    if program not in SHIPPED:
        return None
    import importlib
    return importlib.import_module(SHIPPED[program])


def check_program_args(program: str, argv: list[str], policy: HookPolicy, facts: dict, where: str) -> list[str]:
    """A shipped hook program's arguments, judged by the program's own parser and policy check
    (the program repeats the check when it runs). `argv` excludes argv[0]."""
    module = shipped_module(program)
    if module is None:
        return []
    try:
        opts = module.parse_args(argv)
    except ValueError as exc:
        return [f"{where}.args: {program}: {exc}"]
    return [f"{where}.args: {program}: {p}" for p in module.policy_problems(opts, policy, facts)]


# --- the hook files (look at the filesystem, change nothing) ------------------------------

def resolve_hook_file(path: str, docker_root: str, where: str) -> tuple[str | None, list[str]]:
    """(resolved path, problems) for one hook path: guide notes 1, 2, 5, plus iSulad's rule
    (root-owned, not group/other-writable), extended to every directory above it."""
    root_hooks = os.path.realpath(hooks_dir(docker_root))
    try:
        resolved = os.path.realpath(path, strict=True)
    except OSError as exc:
        return None, [f"{where}.path: {path!r} cannot be resolved: {exc.strerror or exc}"]
    if resolved == root_hooks or not trust.within(resolved, root_hooks):  # by components
        shown = "" if resolved == path else f" (resolves to {resolved!r})"
        return None, [f"{where}.path: {path!r}{shown} is outside the hooks directory {root_hooks}"]
    try:
        _, st = trust.check_trusted(resolved)
    except trust.Untrusted as exc:
        return None, [f"{where}.path: {path!r}: {exc}"]
    mode = stat.S_IMODE(st.st_mode)
    if not mode & stat.S_IXUSR:
        return None, [f"{where}.path: {path!r} is not executable (mode {mode:04o})"]
    return resolved, []


def check_hook_file(path: str, docker_root: str, where: str) -> list[str]:
    return resolve_hook_file(path, docker_root, where)[1]


def check_hooks(spec: dict, docker_root: str, policy: HookPolicy, facts=None) -> tuple[dict, list[str]]:
    """(spec with each hook path resolved, problems): hook files, env, shipped programs' args.

    Paths are replaced by what they resolve to, so runc runs the file that was checked, not
    whatever a symlink in the given path points at by then.
    """
    problems, out = [], {}
    for phase in PHASES:
        out[phase] = []
        for i, hook in enumerate(spec.get(phase) or []):
            where = f"{phase}[{i}]"
            resolved, faults = resolve_hook_file(hook["path"], docker_root, where)
            faults += check_env(hook["env"], policy, where)
            if resolved is not None:
                program = os.path.basename(resolved)
                if program in SHIPPED:
                    if facts is None:
                        facts = host_facts()
                    faults += check_program_args(program, hook["args"][1:], policy, facts, where)
            problems += faults
            out[phase].append(dict(hook, path=resolved or hook["path"]))
    return out, problems


def host_facts() -> dict:
    """What the shipped programs' argument checks need to know about this host."""
    from hookbin.hooks import network_hook
    return {"default_route_ifaces": network_hook.default_route_ifaces()}


# --- the edge: reading a spec file --------------------------------------------------------

def check_spec_location(resolved: str, docker_root: str, policy: HookPolicy, granted: bool) -> list[str]:
    """Where a spec may come from (pure but for resolving the policy's own directories).

    A container's spec lies in one of the policy's spec_dirs (any trusted place when the
    list is empty); no spec lies under Docker's root, where containers' layers and volumes
    are written as root from inside containers. `granted`: the daemon-wide spec, named by
    root in daemon.json, need not be in spec_dirs.
    """
    root = os.path.normpath(docker_root)
    if trust.within(resolved, root) or trust.within(resolved, os.path.realpath(root)):
        return [f"{resolved}: a hook-spec may not lie under Docker's root {docker_root} "
                "(containers write there as root)"]
    if granted or not policy.spec_dirs:
        return []
    dirs = list(policy.spec_dirs) + [os.path.realpath(d) for d in policy.spec_dirs]
    if not any(trust.within(resolved, d) and resolved != d for d in dirs):
        return [f"{resolved}: a container's hook-spec must lie in a spec directory the host grants "
                f"({', '.join(policy.spec_dirs)}; policy [hookspec] spec_dirs)"]
    return []


def read_spec_file(path: str, docker_root: str = DEFAULT_DOCKER_ROOT, policy: HookPolicy | None = None,
                   granted: bool = False) -> str:
    """The spec file's text, read through the fd whose whole path was judged trusted: absolute,
    in a granted place, root's alone from `/` down, a regular file of at most MAX_SPEC_BYTES,
    UTF-8."""
    policy = policy or hookpolicy.DEFAULT
    if not isinstance(path, str) or not path:
        raise SpecError(["hook-spec path is empty"])
    if not os.path.isabs(path):
        raise SpecError([f"{path}: hook-spec path must be absolute"])
    # Where it may lie is judged first, on the path as given and as resolved, so that the
    # answer for a path outside the granted places tells nothing about the host's files
    # (whether it exists, where its symlinks lead, who owns it).
    where = check_spec_location(os.path.normpath(path), docker_root, policy, granted)
    if where:
        raise SpecError(where)
    try:
        resolved = trust.resolve(path)
    except trust.Untrusted as exc:
        raise SpecError([f"{path}: cannot open hook-spec: {exc}"]) from None
    if check_spec_location(resolved, docker_root, policy, granted):
        raise SpecError([f"{path}: resolves outside the spec directories the host grants "
                         f"({', '.join(policy.spec_dirs)}; policy [hookspec] spec_dirs)"])
    try:
        fd, _ = trust.open_trusted(resolved)
    except trust.Untrusted as exc:
        raise SpecError([f"{path}: hook-spec is not trusted: {exc} (a hook-spec is a privilege the "
                         "host grants: root-owned, in root-owned directories no group or other "
                         "can write)"]) from None
    try:
        st = os.fstat(fd)
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


def check_spec(spec: dict, source: str, docker_root: str, policy: HookPolicy | None = None,
               facts=None) -> dict:
    """A parsed spec fully validated (hook files, env, args): the spec with resolved paths."""
    checked, problems = check_hooks(spec, docker_root, policy or hookpolicy.DEFAULT, facts)
    if problems:
        raise SpecError([f"{source}: {p}" for p in problems])
    return checked


def load_spec(path: str, docker_root: str = DEFAULT_DOCKER_ROOT, policy: HookPolicy | None = None,
              granted: bool = False) -> dict:
    """Read, parse and fully validate one spec file; SpecError lists every fault."""
    spec = parse_spec_text(read_spec_file(path, docker_root, policy, granted), path)
    return check_spec(spec, path, docker_root, policy)


def load_specs(paths: list[str], docker_root: str = DEFAULT_DOCKER_ROOT, policy: HookPolicy | None = None,
               granted: str | None = None) -> dict:
    """Load several specs and merge them in order; faults of all files are reported together.
    `granted`: the daemon-wide spec's path (exempt from spec_dirs, not from anything else)."""
    specs, problems = [], []
    for path in paths:
        try:
            specs.append(load_spec(path, docker_root, policy, granted=path == granted and granted is not None))
        except SpecError as exc:
            problems += exc.problems
    if problems:
        raise SpecError(problems)
    return merge(specs)


def check_label(value: str, docker_root: str, policy: HookPolicy | None = None) -> list[str]:
    """Problems with a `dockguard.hook-spec` label value (empty list: acceptable).

    For the AuthZ plugin: the same checks the runtime wrapper applies at container start.
    """
    try:
        load_specs(split_label(value), docker_root, policy)
    except SpecError as exc:
        return exc.problems
    return []
