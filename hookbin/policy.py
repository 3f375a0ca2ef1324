"""The `[hookspec]` section of dockguard's policy: which hook-specs the host grants, and what
their hooks may carry.

Users of the Docker API are not trusted, and hooks run as root on the host: a hook-spec is a
privilege the host grants, never something a container names freely. One parser, shared by
the AuthZ plugin (authz/policy.py), dockguard-runtime and the hook programs themselves, so
all three judge a spec by the same policy. Stdlib only (`tomllib`): the runtime and the
hooks run under `python -I -S`.

    [hookspec]
    spec_dirs = ["/etc/docker/hookspecs"]   # a container's spec must lie in one of these
    env_allow = []                           # names added to the built-in environment allow-list
    network_interfaces = []                  # host interfaces network-hook may move (none)
    log_dir = "/var/log/dockguard-hooks"     # where docker-hooks / lxcfs-hook may write logs
    lxcfs_roots = ["/var/lib/lxcfs"]         # --lxcfs-root values lxcfs-hook accepts
"""
from __future__ import annotations

import os

from dockguard.util import DockguardError


class _Pattern:
    """A regular expression compiled on first use: dockguard-runtime imports this module on
    every container start, and `re` costs it ~8 ms of CPU; these run only when a spec is judged."""

    def __init__(self, pattern: str):
        self.pattern, self._rx = pattern, None

    def match(self, text: str):
        if self._rx is None:
            import re
            self._rx = re.compile(self.pattern)
        return self._rx.match(text)


DEFAULT_POLICY_PATH = "/etc/dockguard/policy.toml"
DEFAULT_SPEC_DIRS = ("/etc/docker/hookspecs",)
DEFAULT_LOG_DIR = "/var/log/dockguard-hooks"
DEFAULT_LXCFS_ROOTS = ("/var/lib/lxcfs",)

# Built-in environment allow-list: name -> what its value must look like. Values are checked
# too: LANG=/tmp/x makes glibc load locale data from that path, TZ=/tmp/x a zone file, and a
# PATH naming a user's directory makes a root shell hook run the user's programs.
_LOCALE = _Pattern(r"[A-Za-z0-9_.@-]{1,64}\Z")
_TZ = _Pattern(r":?[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*\Z")
_TERM = _Pattern(r"[A-Za-z0-9._+-]{1,64}\Z")
SAFE_PATH_DIRS = frozenset({"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"})
BUILTIN_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "LC_NUMERIC", "LC_TIME",
               "LC_COLLATE", "TZ", "TERM")

# Names no policy may allow: the dynamic loader's, interpreters' and shells' start-up hooks.
# This is a guard against a careless policy, not the rule: the rule is the allow-list.
_NEVER = _Pattern(r"(LD_|PYTHON|PERL|RUBY|NODE_|JAVA_|_JAVA_|GCONV|GLIBC_|MALLOC_|LOCPATH|NLSPATH|"
                    r"BASH_|SHELLOPTS|PS4|HOSTALIASES|RES_OPTIONS|LOCALDOMAIN|TMPDIR|HOME|XDG_|"
                    r"GIT_|LUA_|TCL|OPENSSL_|SSL_|CURL_|GETCONF|IFS\Z|ENV\Z|CDPATH\Z|TERMINFO|TERMCAP)")
_NAME = _Pattern(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class PolicyError(DockguardError, ValueError):
    """The policy cannot be read or says something invalid: callers fail closed."""


class HookPolicy:
    """The compiled `[hookspec]` section (a plain class: `dataclasses` costs import time)."""

    __slots__ = ("spec_dirs", "env_allow", "network_interfaces", "log_dir", "lxcfs_roots", "source")

    def __init__(self, spec_dirs=DEFAULT_SPEC_DIRS, env_allow=(), network_interfaces=(),
                 log_dir=DEFAULT_LOG_DIR, lxcfs_roots=DEFAULT_LXCFS_ROOTS, source="built-in default"):
        self.spec_dirs = tuple(os.path.normpath(d) for d in spec_dirs)
        self.env_allow = frozenset(BUILTIN_ENV) | frozenset(env_allow)
        self.network_interfaces = frozenset(network_interfaces)
        self.log_dir = os.path.normpath(log_dir)
        self.lxcfs_roots = tuple(os.path.normpath(d) for d in lxcfs_roots)
        self.source = source

    def __eq__(self, other):
        return isinstance(other, HookPolicy) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__ if k != "source")

    def __hash__(self):
        return hash(tuple(getattr(self, k) for k in self.__slots__ if k != "source"))

    def __repr__(self):
        return (f"HookPolicy(spec_dirs={self.spec_dirs!r}, env_allow={sorted(self.env_allow)!r}, "
                f"network_interfaces={sorted(self.network_interfaces)!r}, log_dir={self.log_dir!r}, "
                f"lxcfs_roots={self.lxcfs_roots!r})")


DEFAULT = HookPolicy()
KEYS = ("spec_dirs", "env_allow", "network_interfaces", "log_dir", "lxcfs_roots")


def never_allowed(name: str) -> bool:
    return bool(_NEVER.match(name.upper()))


def check_env_value(name: str, value: str) -> str | None:
    """Why a built-in variable's value is refused (None: fine). Names added by a policy are
    the operator's own variables for their own hooks: their values are not judged here."""
    if name == "PATH":
        bad = [d for d in value.split(":") if d not in SAFE_PATH_DIRS]
        if bad:
            return (f"PATH may only name the system directories {', '.join(sorted(SAFE_PATH_DIRS))}"
                    f" (got {', '.join(repr(d) for d in bad)})")
    elif name == "LANG" or name.startswith("LC_"):
        if not _LOCALE.match(value):
            return f"{name} must be a locale name like C.UTF-8 (no '/', got {value!r})"
    elif name == "TZ":
        if not _TZ.match(value) or ".." in value.split("/"):
            return f"TZ must be a zone name like Europe/Paris or UTC (no file path, got {value!r})"
    elif name == "TERM":
        if not _TERM.match(value):
            return f"TERM must be a terminal name (got {value!r})"
    return None


def _str_list(section: dict, key: str, where: str) -> list[str] | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: hookspec.{key} must be a list of strings")
    return value


def _abs_dirs(values: list[str], key: str, where: str) -> list[str]:
    for v in values:
        if not v.startswith("/") or "\0" in v:
            raise PolicyError(f"{where}: hookspec.{key} entry {v!r} must be an absolute path")
    return values


def from_section(section, where: str = "policy") -> HookPolicy:
    """The `[hookspec]` table (already decoded) -> HookPolicy; PolicyError on anything odd.

    `spec_dirs`, `network_interfaces`, `log_dir` and `lxcfs_roots` replace the defaults;
    `env_allow` adds names to the built-in allow-list (and may never add a loader's or an
    interpreter's variable).
    """
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise PolicyError(f"{where}: [hookspec] must be a table")
    for key in section:
        if key not in KEYS:
            raise PolicyError(f"{where}: unknown key hookspec.{key}; known: {', '.join(KEYS)}")
    kw: dict = {"source": where}
    spec_dirs = _str_list(section, "spec_dirs", where)
    if spec_dirs is not None:
        kw["spec_dirs"] = _abs_dirs(spec_dirs, "spec_dirs", where)
    env = _str_list(section, "env_allow", where)
    if env is not None:
        for name in env:
            if not _NAME.match(name):
                raise PolicyError(f"{where}: hookspec.env_allow entry {name!r} is not a variable name")
            if never_allowed(name):
                raise PolicyError(f"{where}: hookspec.env_allow may not allow {name}: it changes what "
                                  "the loader, an interpreter or a shell runs")
        kw["env_allow"] = env
    ifaces = _str_list(section, "network_interfaces", where)
    if ifaces is not None:
        for name in ifaces:
            if not (0 < len(name.encode()) < 16) or name in (".", "..", "lo") or any(c in name for c in "/: \t\n\0"):
                raise PolicyError(f"{where}: hookspec.network_interfaces entry {name!r} is not an "
                                  "interface network-hook may move")
        kw["network_interfaces"] = ifaces
    if "log_dir" in section:
        log_dir = section["log_dir"]
        if not isinstance(log_dir, str):
            raise PolicyError(f"{where}: hookspec.log_dir must be a string")
        kw["log_dir"] = _abs_dirs([log_dir], "log_dir", where)[0]
        if os.path.normpath(log_dir) == "/":
            raise PolicyError(f"{where}: hookspec.log_dir may not be /")
    roots = _str_list(section, "lxcfs_roots", where)
    if roots is not None:
        kw["lxcfs_roots"] = _abs_dirs(roots, "lxcfs_roots", where)
    return HookPolicy(**kw)


def load(path: str | None = None) -> HookPolicy:
    """The hook policy from a dockguard policy file (only its `[hookspec]` table is read).

    No path: DEFAULT_POLICY_PATH when it exists, else the built-in defaults. A file that
    exists but cannot be read or parsed, or that is not root's alone, is an error (fail
    closed): it decides what runs as root.
    """
    if path is None:
        if not os.path.lexists(DEFAULT_POLICY_PATH):
            return DEFAULT
        path = DEFAULT_POLICY_PATH
    import tomllib

    from hookbin import trust
    try:
        fd, _resolved = trust.open_trusted(path)
    except trust.Untrusted as exc:
        raise PolicyError(f"policy {path}: {exc}") from None
    try:
        with os.fdopen(fd, "rb") as f:
            doc = tomllib.loads(f.read(1 << 20).decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy {path} is not valid TOML: {exc}") from None
    return from_section(doc.get("hookspec"), path)


def log_path_problem(path: str, policy: HookPolicy) -> str | None:
    """Why a hook program may not write its log at `path` (None: it may). Pure.

    Only a plain file name directly in the policy's log_dir: a hook runs as root, and a
    user's spec naming /etc/ld.so.preload or /etc/sudoers as its "log" must not be appended to.
    """
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        return f"log {path!r} must be an absolute path"
    name = os.path.basename(path)
    if path != os.path.normpath(path) or os.path.dirname(path) != policy.log_dir or name in ("", ".", ".."):
        return (f"log {path!r} must be a file directly in {policy.log_dir} "
                "(policy [hookspec] log_dir)")
    return None
