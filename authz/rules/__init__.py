"""The rule registry: each rule is a small function over plain data.

A rule's `check(spec, facts)` returns the problems it sees (strings naming exactly what
was asked), or nothing: `spec` is the one normalised Spec of the request (authz/spec.py),
`facts` its context, which carries the request itself (`facts.request`: action, name,
query) and answers every lookup. It never does I/O itself: what it needs from the daemon or
the host it asks `facts`, the edge that gathers it (and that tests replace with plain data).
"""
from __future__ import annotations

TYPE_CHECKING = False  # typing/collections.abc are not imported at run time: see Rule
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

from dockguard.util import DockguardError

LEVELS = ("deny", "audit", "off")


class LookupFailed(DockguardError, RuntimeError):
    """The context could not learn what a rule needs to know (the daemon did not answer, a
    file could not be read): the engine denies, naming the rule; never allow by accident."""


class Rule:
    """One rule. A plain immutable class, not a dataclass: dockguard-runtime imports the rule
    modules on every container start, and `dataclasses` alone costs it ~10 ms."""

    __slots__ = ("id", "actions", "reason", "hint", "check")
    id: str
    actions: frozenset[str]
    reason: str   # why, in one line (the guide's reason)
    hint: str     # how to do the thing safely
    check: Callable

    def __init__(self, id, actions, reason, hint, check):
        for name, value in zip(self.__slots__, (id, actions, reason, hint, check)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"Rule is read-only ({name})")

    def __repr__(self):
        return f"Rule({self.id!r})"


REGISTRY: dict[str, Rule] = {}


def rule(id: str, *, actions: Iterable[str], reason: str, hint: str):
    """Register a rule. Its level (deny, audit, off) is the policy's: the built-in default
    policy (authz/default_policy.toml) is the one place that sets each rule's default."""
    def deco(fn):
        if id in REGISTRY:
            raise ValueError(f"rule {id} registered twice")
        REGISTRY[id] = Rule(id, frozenset(actions), reason, hint, fn)
        return fn
    return deco


STAGES: dict[str, Rule] = {}


def stage(id: str, *, reason: str, hint: str) -> Rule:
    """Register a check the engine runs itself, as a stage with state of its own (the
    in-flight table): no check function, but a level in the policy and a finding's wording
    like a rule's. Not in REGISTRY: no action runs it as a rule."""
    if id in REGISTRY or id in STAGES:
        raise ValueError(f"check {id} registered twice")
    STAGES[id] = Rule(id, frozenset(), reason, hint, None)
    return STAGES[id]


def finding(rule: Rule, problems) -> str:
    """A rule's findings as every denial reads: the rule id, what was found, why, and how to
    do it safely (`problems`: one string or a list of them)."""
    if isinstance(problems, str):
        problems = [problems]
    return f"[{rule.id}] {'; '.join(problems)}: {rule.reason}. Safely: {rule.hint}."


def all_rules() -> dict[str, Rule]:
    # Importing the concern modules registers their rules, once.
    from . import (api, capabilities, devices, health, hooks, lifecycle, mounts, naming,  # noqa: F401
                   plugins, privileges, resources, security, stdio)
    from . import annotation, runtime  # noqa: F401
    from . import buildkit  # noqa: F401
    from . import cis  # noqa: F401  (off unless the cis profile turns them on)
    return REGISTRY


def all_checks() -> dict[str, Rule]:
    """Every id the policy sets a level for: the rules and the engine's stages."""
    from .. import inflight  # noqa: F401 - registers the in-flight limit stage
    return {**all_rules(), **STAGES}
