"""The rule registry: each rule is a small function over plain data.

A rule's `check(req, spec, ctx)` returns the problems it sees (strings naming exactly what
was asked), or nothing. It never does I/O itself: what it needs from the daemon or the
host it asks `ctx`, the edge that gathered it (and that tests replace with plain data).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

LEVELS = ("deny", "audit", "off")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    actions: frozenset[str]
    reason: str   # why, in one line (the guide's reason)
    hint: str     # how to do the thing safely
    default: str  # deny | audit | off
    check: Callable


REGISTRY: dict[str, Rule] = {}


def rule(id: str, *, actions: Iterable[str], reason: str, hint: str, default: str = "deny"):
    def deco(fn):
        if id in REGISTRY:
            raise ValueError(f"rule {id} registered twice")
        REGISTRY[id] = Rule(id, frozenset(actions), reason, hint, default, fn)
        return fn
    return deco


def all_rules() -> dict[str, Rule]:
    # Importing the concern modules registers their rules, once.
    from . import (api, capabilities, devices, health, hooks, lifecycle, mounts, naming,  # noqa: F401
                   plugins, privileges, resources, security, stdio)
    from . import annotation, runtime  # noqa: F401
    from . import buildkit  # noqa: F401
    return REGISTRY
