"""The policy: TOML levels per rule and list extensions over the built-in default.

Loaded and compiled once, at start: the result maps each action to the rules that apply to
it with their level, so a request costs one dict lookup to find its rules.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from . import exceptions, localvol
from .rules import LEVELS, Rule, all_checks, all_rules
from .rules.capabilities import DEFAULT_DANGEROUS, normalise
from .rules.devices import DEFAULT_SENSITIVE_DEVICES
from .rules.mounts import DEFAULT_SENSITIVE, norm
from dockguard.util import DockguardError


@dataclass(frozen=True, slots=True)
class Lists:
    """The policy's lists, compiled: what the rules read through their context."""

    sensitive_paths: frozenset[str]
    sensitive_devices: frozenset[str]
    dangerous_capabilities: frozenset[str]
    # host paths carved out of sensitive_paths (a path inside one is allowed unless a deeper
    # sensitive path holds it); local-volume types beyond tmpfs; network volume servers
    allowed_paths: frozenset[str] = frozenset()
    volume_types: frozenset[str] = frozenset()
    volume_servers: frozenset[str] = frozenset()
    annotations: frozenset[str] = frozenset()  # allowed annotation keys; "prefix.*" = a prefix
    runtimes: frozenset[str] = frozenset()     # allowed runtimes; empty = any
    hookspec: object = None  # hookbin.policy.HookPolicy from [hookspec]; None: its defaults
    allowed_capabilities: frozenset[str] = frozenset()  # cis profile: beyond Docker's default set
    allowed_devices: frozenset[str] = frozenset()       # cis profile: host devices a container may get


class PolicyError(DockguardError, ValueError):
    """The policy file is wrong; the plugin does not start with it."""


@dataclass(frozen=True, slots=True)
class Policy:
    levels: dict[str, str]
    lists: Lists
    max_inflight: int
    inflight_ttl: float
    lookup_timeout: float
    by_action: dict[str, tuple[tuple[Rule, str], ...]]
    source: str
    mode: str = "enforce"          # "audit": every deny is recorded as audit (rollout)
    exceptions: tuple = ()         # authz/exceptions.py entries
    policy_hash: str = ""          # of the built-in default and the file: in every audit line
    audit_allowed: str = "changes"  # which allowed requests are logged: all | changes | none

    def level(self, rule_id: str) -> str:
        return self.levels.get(rule_id, "off")


def default_text() -> str:
    return resources.files("authz").joinpath("default_policy.toml").read_text()


def load(path: str | Path | None = None) -> Policy:
    import hashlib
    text = default_text()
    base = tomllib.loads(text)
    source = "built-in default"
    digest = hashlib.sha256(text.encode())
    if path is not None:
        try:
            with open(path, "rb") as f:
                raw = f.read()
            user = tomllib.loads(raw.decode())
        except OSError as exc:
            raise PolicyError(f"cannot read policy {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise PolicyError(f"policy {path} is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy {path} is not valid TOML: {exc}") from None
        digest.update(b"\0" + raw)
        digest.update(b"\0" + _apply_profile(base, user, str(path)).encode())  # the profile's text too
        _overlay(base, user, str(path))
        source = str(path)
    pol = compile_policy(base, source)
    return replace(pol, policy_hash=digest.hexdigest()[:16])


# Built-in profiles a policy file selects with a top-level `profile = "NAME"`: the guide's
# default policy, plus the named file's rule levels and lists; the file's own [rules] and
# [lists] then apply over both (docs/cis.md).
PROFILES = {"guide": None, "cis": "cis_policy.toml"}


def profile_text(name: str) -> str:
    """The policy text `dockguard authz default-policy --profile NAME` prints."""
    if name not in PROFILES:
        raise PolicyError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    file = PROFILES[name]
    return default_text() if file is None else resources.files("authz").joinpath(file).read_text()


def _apply_profile(base: dict, user: dict, where: str) -> str:
    """Overlay the profile the user's file names (and take the key out of it); its text."""
    name = user.pop("profile", "guide")
    if not isinstance(name, str) or name not in PROFILES:
        raise PolicyError(f"{where}: profile must be one of {', '.join(map(repr, PROFILES))}, not {name!r}")
    if PROFILES[name] is not None:
        text = profile_text(name)
        prof = tomllib.loads(text)
        prof.pop("profile", None)
        _overlay(base, prof, f"profile {name}")
        return text
    return ""


def _overlay(base: dict, user: dict, where: str) -> None:
    for section, value in user.items():
        if section in ("mode", "exceptions"):  # a top-level key and an array of tables
            base[section] = value
            continue
        if section not in ("rules", "lists", "limits", "hookspec", "audit"):
            raise PolicyError(f"{where}: unknown section [{section}] (rules, lists, limits, hookspec, "
                              "audit, exceptions; or the key mode)")
        if not isinstance(value, dict):
            raise PolicyError(f"{where}: [{section}] must be a table")
        if section in ("hookspec", "audit"):  # replaces the defaults key by key
            base.setdefault(section, {}).update(value)
            continue
        for k, v in value.items():
            if section == "lists":
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    raise PolicyError(f"{where}: lists.{k} must be a list of strings")
                base[section].setdefault(k, [])
                base[section][k] = list(base[section][k]) + v
            else:
                base[section][k] = v


def _hookspec(section, source: str):
    """[hookspec]: parsed by hookbin's own code, which the runtime and the hooks share."""
    from hookbin import policy as hookpolicy
    try:
        return hookpolicy.from_section(section, source or "policy")
    except hookpolicy.PolicyError as exc:
        raise PolicyError(str(exc)) from None


def compile_policy(doc: dict, source: str = "") -> Policy:
    registry = all_checks()  # rules and the engine's stages (the in-flight limit)
    levels: dict[str, str] = dict.fromkeys(registry, "off")  # the default policy sets each one
    for rid, level in (doc.get("rules") or {}).items():
        if rid not in registry:
            raise PolicyError(f"{source}: unknown rule {rid!r}; known: {', '.join(sorted(registry))}")
        if level not in LEVELS:
            raise PolicyError(f"{source}: rule {rid} must be one of {', '.join(LEVELS)}, not {level!r}")
        levels[rid] = level
    lists = doc.get("lists") or {}
    known_lists = {"sensitive_paths", "sensitive_devices", "dangerous_capabilities", "annotations", "runtimes"}
    known_lists |= {"allowed_paths", "volume_types", "volume_servers"}
    known_lists |= {"allowed_capabilities", "allowed_devices"}  # the cis profile's
    for k in lists:
        if k not in known_lists:
            raise PolicyError(f"{source}: unknown list {k!r}; known: {', '.join(sorted(known_lists))}")
    for k in ("sensitive_paths", "sensitive_devices", "allowed_devices"):
        for p in lists.get(k, []):
            if not p.startswith("/"):
                raise PolicyError(f"{source}: lists.{k} entry {p!r} must be an absolute path")
    for p in lists.get("allowed_paths", []):
        if not p.startswith("/") or norm(p) == "/":
            raise PolicyError(f"{source}: lists.allowed_paths entry {p!r} must be an absolute path below /")
    for err in localvol.validate_types(lists.get("volume_types", [])):
        raise PolicyError(f"{source}: lists.volume_types: {err}")
    for x in lists.get("volume_servers", []):
        if not localvol.valid_server(x):
            raise PolicyError(f"{source}: lists.volume_servers entry {x!r} must be a host name or an address")
    for k in ("annotations", "runtimes"):
        for x in lists.get(k, []):
            if not x.strip() or x != x.strip() or x in ("*", ".*"):
                raise PolicyError(f"{source}: lists.{k} entry {x!r} must be a non-empty name without "
                                  "surrounding spaces (annotations: an exact key or a prefix ending in .*)")
    compiled_lists = Lists(
        sensitive_paths=frozenset(norm(p) for p in DEFAULT_SENSITIVE + tuple(lists.get("sensitive_paths", []))),
        sensitive_devices=frozenset(norm(p) for p in DEFAULT_SENSITIVE_DEVICES + tuple(lists.get("sensitive_devices", []))),
        dangerous_capabilities=frozenset(DEFAULT_DANGEROUS | {normalise(c) for c in lists.get("dangerous_capabilities", [])}),
        allowed_paths=frozenset(norm(p) for p in lists.get("allowed_paths", [])),
        volume_types=frozenset(localvol.BUILTIN_TYPES + tuple(lists.get("volume_types", []))),
        volume_servers=frozenset(localvol.host_key(x) for x in lists.get("volume_servers", [])),
        annotations=frozenset(lists.get("annotations", [])),
        runtimes=frozenset(lists.get("runtimes", [])),
        allowed_capabilities=frozenset(normalise(c) for c in lists.get("allowed_capabilities", [])),
        allowed_devices=frozenset(norm(p) for p in lists.get("allowed_devices", [])),
        hookspec=_hookspec(doc.get("hookspec"), source),
    )
    limits = doc.get("limits") or {}
    known_limits = {"max_inflight": int, "inflight_ttl_seconds": (int, float), "lookup_timeout_seconds": (int, float)}
    for k, v in limits.items():
        if k not in known_limits:
            raise PolicyError(f"{source}: unknown limit {k!r}; known: {', '.join(sorted(known_limits))}")
        if isinstance(v, bool) or not isinstance(v, known_limits[k]) or v <= 0:
            raise PolicyError(f"{source}: limits.{k} must be a positive number, not {v!r}")
    mode = doc.get("mode", "enforce")
    if mode not in ("enforce", "audit"):
        raise PolicyError(f"{source}: mode must be \"enforce\" or \"audit\", not {mode!r}")
    if mode == "audit":  # rollout: what would be refused is recorded, nothing is refused
        levels = {rid: ("audit" if lv == "deny" else lv) for rid, lv in levels.items()}
    audit = doc.get("audit") or {}
    for k, v in audit.items():
        if k != "allowed":
            raise PolicyError(f"{source}: unknown key audit.{k} (allowed)")
        if v not in ("all", "changes", "none"):
            raise PolicyError(f"{source}: audit.allowed must be \"all\", \"changes\" or \"none\", not {v!r}")
    try:
        excs = exceptions.parse(doc.get("exceptions"), all_rules(), source or "policy")
    except exceptions.ExceptionError as exc:
        raise PolicyError(str(exc)) from None
    by_action: dict[str, list[tuple[Rule, str]]] = {}
    for rid, r in registry.items():
        if levels[rid] == "off":
            continue
        for action in r.actions:
            by_action.setdefault(action, []).append((r, levels[rid]))
    return Policy(
        levels=levels,
        lists=compiled_lists,
        max_inflight=int(limits.get("max_inflight", 1000)),
        inflight_ttl=float(limits.get("inflight_ttl_seconds", 300)),
        lookup_timeout=float(limits.get("lookup_timeout_seconds", 10)),
        by_action={a: tuple(v) for a, v in by_action.items()},
        source=source,
        mode=mode,
        exceptions=excs,
        audit_allowed=audit.get("allowed", "changes"),
    )
