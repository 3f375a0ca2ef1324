"""Exceptions: narrow allow entries an operator names in the policy, matched on concrete values.

    [[exceptions]]
    name = "localtime"              # named in the audit line whenever it applies
    rule = "sensitive-mount"        # the one rule it excuses
    bind = "/etc/localtime:ro"      # exactly one concrete value: bind, capability or device
    image = "registry.local/ntp:1"  # optional selectors: narrow further, never widen
    label = "team=infra"
    why = "containers read the host's time zone"

An exception never excuses a rule as a whole: the rule is asked again about the request with
the matched values taken out, so anything else it finds is still refused. Matching, the same
in the plugin and in dockguard-runtime (both call `check` with the same compiled entries):
- bind PATH:ro covers a bind whose source is exactly PATH as given (no other spelling:
  `/etc/x/../localtime` may reach another file through a symlinked /etc/x), read-only; PATH:rw covers it
  read-only or writable. Not a parent or child of PATH, not another path (a symlink) that
  resolves to it. Where the source is resolved (the runtime pins it), the resolved source
  must also be PATH or what PATH itself resolves to now (/etc/localtime -> zoneinfo file).
- capability NAME covers that capability (CAP_ prefix and case ignored); never ALL.
- device PATH covers a device entry that is the same device node (type, major, minor) as
  PATH on the host, whatever name it is given: the node is what the container gets.
- image (the reference as asked) and label (KEY=VALUE on the container's labels over its
  image's) are selectors the requester controls (a tag, a label): they narrow an
  exception to some containers, they authenticate nothing; hence the concrete value.
Plain classes and no imports beyond `os`: dockguard-runtime loads this on every create.
"""
from __future__ import annotations

import os

from dockguard.util import DockguardError

KINDS = ("bind", "capability", "device")
KEYS = frozenset(KINDS + ("name", "rule", "image", "label", "why"))


class ExceptionError(DockguardError, ValueError):
    """An [[exceptions]] entry is wrong: the policy does not load."""


def _norm(p: str) -> str:
    return "/" + os.path.normpath("/" + p).lstrip("/")


def _cap(c: str) -> str:
    c = c.strip().upper()
    return c[4:] if c.startswith("CAP_") else c


class Exc:
    """One compiled entry (plain data; `as_dict` is what the runtime's policy cache stores)."""
    __slots__ = ("name", "rule", "kind", "value", "mode", "image", "label", "why")

    def __init__(self, name, rule, kind, value, mode="", image="", label="", why=""):
        self.name, self.rule, self.kind, self.value, self.mode = name, rule, kind, value, mode
        self.image, self.label, self.why = image, label, why

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}

    def describe(self) -> str:
        v = f"{self.value}:{self.mode}" if self.kind == "bind" else self.value
        return f"{self.name} ({self.rule}: {self.kind} {v})"


def from_dicts(items) -> tuple:
    return tuple(Exc(**d) for d in items or ())


def parse(entries, known_rules, where: str) -> tuple:
    """The policy's `exceptions` array -> compiled entries; ExceptionError names what is wrong."""
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise ExceptionError(f"{where}: exceptions must be an array of tables ([[exceptions]])")
    out, names = [], set()
    for i, e in enumerate(entries):
        at = f"{where}: exceptions[{i}]"
        if not isinstance(e, dict):
            raise ExceptionError(f"{at} must be a table")
        unknown = set(e) - KEYS
        if unknown:
            raise ExceptionError(f"{at}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(KEYS))}")
        for k, v in e.items():
            if not isinstance(v, str) or not v.strip() or v != v.strip():
                raise ExceptionError(f"{at}: {k} must be a non-empty string without surrounding spaces")
        name = e.get("name")
        if not name or not all(c.isalnum() or c in "-_." for c in name):
            raise ExceptionError(f"{at}: name is required (letters, digits, - _ .)")
        if name in names:
            raise ExceptionError(f"{at}: name {name!r} used twice")
        names.add(name)
        at = f"{where}: exception {name!r}"
        rule = e.get("rule")
        if rule not in known_rules:
            raise ExceptionError(f"{at}: rule {rule!r} is not a known rule id")
        kinds = [k for k in KINDS if k in e]
        if len(kinds) != 1:
            raise ExceptionError(f"{at}: name exactly one concrete value ({', '.join(KINDS)}); an "
                                 "exception never excuses a rule as a whole")
        kind, raw = kinds[0], e[kinds[0]]
        mode = ""
        if kind == "bind":
            path, sep, mode = raw.rpartition(":")
            if not sep or mode not in ("ro", "rw"):
                raise ExceptionError(f"{at}: bind must be PATH:ro or PATH:rw, not {raw!r}")
            value = path
        elif kind == "capability":
            value = _cap(raw)
            if value == "ALL" or not all(c.isalnum() or c == "_" for c in value):
                raise ExceptionError(f"{at}: capability must name one capability, not {raw!r}")
        else:
            value = raw
        if kind in ("bind", "device") and (not value.startswith("/") or _norm(value) != value
                                           or value == "/"):
            raise ExceptionError(f"{at}: {kind} must be a normalised absolute path below /, not {value!r}")
        if kind == "device" and not value.startswith("/dev/"):
            raise ExceptionError(f"{at}: device must be a path under /dev, not {value!r}")
        label = e.get("label", "")
        if label and ("=" not in label or label.startswith("=")):
            raise ExceptionError(f"{at}: label must be KEY=VALUE, not {label!r}")
        out.append(Exc(name, rule, kind, value, mode, e.get("image", ""), label, e.get("why", "")))
    return tuple(out)


# --- matching (pure but for the host lookups named) ----------------------------------------

def _selected(e: Exc, spec, ctx) -> bool:
    """image: the reference as asked; label: the container's labels over its image's, as dockerd
    merges them (the runtime reads them merged from config.v2.json; its ctx has no images)."""
    image = getattr(spec, "image", "") or ""
    if e.image and image != e.image:
        return False
    if e.label:
        k, _, v = e.label.partition("=")
        labels = dict(((ctx.image_config(image) or {}).get("Labels") or {}) if image else {})
        labels.update(getattr(spec, "labels", None) or {})
        if labels.get(k) != v:
            return False
    return True


def _realpath(p: str) -> str:
    try:
        return os.path.realpath(p)
    except (OSError, ValueError):
        return p


def _host_node(path: str):
    from dockguard.util import device_node
    return device_node(path)


def _bind_hit(e: Exc, m, ctx) -> bool:
    if m.kind != "bind" or not m.source or (e.mode == "ro" and not m.read_only):
        return False
    given = getattr(ctx, "bind_given", None)
    if given is None:  # the plugin: the source exactly as the request gives it
        return m.source == e.value
    src = given(m)  # the runtime: exactly as config.json gives it, and the pinned path judged
    return src == e.value and m.source in (e.value, _realpath(e.value))


def _device_hit(e: Exc, d, ctx) -> bool:
    if not d.host:
        return False
    node = ctx.device_node(ctx.realpath(_norm(d.host)) or _norm(d.host))
    return node is not None and node == _host_node(e.value)


def _without(spec, applicable, ctx):
    """A copy of spec with every value an applicable exception covers taken out, and the
    names of the exceptions that took something out."""
    new = object.__new__(type(spec))
    for k in type(spec).__slots__:
        setattr(new, k, getattr(spec, k))
    used = []
    for e in applicable:
        if e.kind == "bind":
            keep = [m for m in new.mounts if not _bind_hit(e, m, ctx)]
            hit, new.mounts = len(keep) != len(new.mounts), keep
        elif e.kind == "capability":
            adds = [c for c in new.cap_add if _cap(c) != e.value]
            caps = (None if new.capabilities is None
                    else [c for c in new.capabilities if _cap(c) != e.value])
            hit = len(adds) != len(new.cap_add) or (caps is not None and len(caps) != len(new.capabilities))
            new.cap_add, new.capabilities = adds, caps
        else:
            keep = [d for d in new.devices if not _device_hit(e, d, ctx)]
            hit, new.devices = len(keep) != len(new.devices), keep
        if hit:
            used.append(e.name)
    return new, used


def check(rule, req, spec, ctx, exceptions) -> tuple:
    """rule.check, with the policy's exceptions for it: (problems left, exceptions applied).
    The context is the rule's facts and carries the request it judges (`facts.request`)."""
    ctx.request = req
    problems = rule.check(spec, ctx)
    if not problems or not exceptions or spec is None:
        return problems, ()
    applicable = [e for e in exceptions if e.rule == rule.id and _selected(e, spec, ctx)]
    if not applicable:
        return problems, ()
    trimmed, used = _without(spec, applicable, ctx)
    if not used:
        return problems, ()
    return rule.check(trimmed, ctx), tuple(used)
