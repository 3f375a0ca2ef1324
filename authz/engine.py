"""The decision: envelope -> route -> spec -> rules -> allow/deny, with audit and in-flight.

Fail closed everywhere: an envelope we cannot read, a body a rule needs that is missing or
malformed, a lookup that fails — each denies with a message saying which.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import existing
from . import exceptions as excs
from . import spec as specs
from .gojson import BodyError
from .inflight import LIMIT, InFlight
from .policy import Policy
from .request import AuthzRequest, EnvelopeError, parse_envelope
from .routes import BODY_ACTIONS, LIFECYCLE_ACTIONS, route
from .rules import LookupFailed, finding

MAX_BODY = 4 * 1024 * 1024
# dockerd already says "authorization denied by plugin NAME: ": no prefix of our own (it read
# "dockguard: dockguard: ..." with the plugin named dockguard).
PREFIX = ""


@dataclass(slots=True)
class Decision:
    allow: bool
    msg: str = ""
    rules: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {"Allow": self.allow, "Msg": self.msg, "Err": ""}


SPEC_BUILDERS = {
    "container.create": lambda req, body: specs.from_create(body, req.q("name")),
    "container.update": lambda req, body: specs.from_update(body),
    "exec.create": lambda req, body: specs.from_exec(body),
    "service.create": lambda req, body: specs.from_service(body),
    "service.update": lambda req, body: specs.from_service(body),
    "container.start": lambda req, body: specs.from_host_config(body),
}


def _content_length(req: AuthzRequest) -> int | None:
    """The body length Go's server reads from the Content-Length dockerd shows us: spaces
    and tabs trimmed, plain decimal digits. None when there is none: Go drops the header for
    a chunked body, so a request without it may carry a body we are never shown."""
    length = req.header("content-length")
    if not isinstance(length, str):
        return None
    v = length.strip(" \t")
    return int(v) if v.isascii() and v.isdigit() else None


def _unseen_start_body(req: AuthzRequest) -> bool:
    """An old-API (< 1.24) start with a body dockerd decodes as a HostConfig (Content-Length
    over 7, or chunked) that it did not forward to us (chunked or over its 1 MiB limit)."""
    if not req.api_below((1, 24)):
        return False  # dockerd refuses a start body from API 1.24 on
    length = _content_length(req)
    return length is None or length > 7


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _form_body(req: AuthzRequest) -> bool:
    """A non-empty form body: Go's ParseForm/FormValue read its values *before* the URL's,
    and dockerd does not pass it to plugins, so the query the rules read may not be the one
    dockerd uses (`rename?name=web` with a body `name=<an ID>`). Only the Content-Type we are
    shown can be checked: dockerd passes the last of repeated headers, Go reads the first."""
    if req.method not in ("POST", "PUT", "PATCH"):
        return False
    ct = req.header("content-type")
    if not isinstance(ct, str) or ct.split(";", 1)[0].strip().lower() not in _FORM_TYPES:
        return False
    return _content_length(req) != 0


# Bodiless POSTs whose rules read query values (name, t, signal). A body we are not shown
# may be a form whose values Go reads before the query's, whatever Content-Type we are shown
# (dockerd passes the last of repeated headers; Go parses by the first), and a chunked body
# shows no Content-Length at all. So only a request that provably has no body passes:
# Content-Length 0 (what the docker CLI and SDK send), or a body dockerd forwarded to us,
# which it does only when the first Content-Type is JSON (never parsed as a form).
QUERY_ONLY_ACTIONS = frozenset({"container.rename", "container.stop", "container.restart",
                                "container.kill"})


def _unseen_body(req: AuthzRequest) -> bool:
    if req.action not in QUERY_ONLY_ACTIONS or req.method != "POST" or req.body_raw:
        return False
    return _content_length(req) != 0


def _stage_form_body(req: AuthzRequest) -> str | None:
    if _form_body(req):
        return "a form-encoded body overrides the URL's query parameters in dockerd and is not passed to plugins"
    return None


def _stage_unseen_body(req: AuthzRequest) -> str | None:
    if _unseen_body(req):
        return (f"{req.action} without Content-Length: 0 may carry a body dockerd does not pass to "
                "plugins (chunked, or a form-encoded body that overrides the URL's query parameters)")
    return None


def _stage_missing_body(req: AuthzRequest) -> str | None:
    if req.action in BODY_ACTIONS and not req.body_raw:
        return (f"{req.action} needs its JSON body and dockerd did not pass one (missing, not "
                "application/json, or too large)")
    return None


def _stage_unseen_start_body(req: AuthzRequest) -> str | None:
    if req.action == "container.start" and not req.body_raw and _unseen_start_body(req):
        return (f"container.start on API v{req.version} may carry a HostConfig body that dockerd "
                "applies but did not pass (chunked, or too large)")
    return None


# The engine's body stages, in order, before any rule: a request whose body the rules would
# not see as dockerd uses it is refused as malformed (the reason each returns), never judged.
BODY_STAGES = (_stage_form_body, _stage_unseen_body, _stage_missing_body, _stage_unseen_start_body)


class Engine:
    def __init__(self, policy: Policy, context_factory, audit):
        """`context_factory()`: a fresh per-request context (authz/context.py's
        request_contexts at the edge, plain data in tests); `audit`: the sink with
        write(**record) (authz/audit.py's AuditLog). The engine builds neither: it does no I/O."""
        self.policy = policy
        self.context_factory = context_factory
        self.audit = audit
        self.inflight = InFlight(policy.inflight_ttl)
        self._existing_rules = None  # computed on first use (authz/existing.py)

    # ---- AuthZReq ----
    def request(self, data: bytes) -> Decision:
        try:
            req = parse_envelope(data, max_body=MAX_BODY)
        except EnvelopeError as exc:
            return self._deny_malformed(None, str(exc))
        req.action, req.name = route(req.method, req.path)
        return self.decide(req)

    def decide(self, req: AuthzRequest) -> Decision:
        rules = self.policy.by_action.get(req.action, ())
        lifecycle = req.action in LIFECYCLE_ACTIONS
        if not rules and not lifecycle and req.action not in existing.JUDGED_ACTIONS:
            self._audit(req, "allow", ())
            return Decision(True)
        spec = None
        try:
            for body_stage in BODY_STAGES:
                why = body_stage(req)
                if why:
                    return self._deny_malformed(req, why)
            builder = SPEC_BUILDERS.get(req.action)
            if builder is not None and (req.body_raw or req.action != "container.start"):
                spec = builder(req, req.body())
        except BodyError as exc:
            return self._deny_malformed(req, str(exc))

        ctx = self.context_factory()
        denies: list[tuple[str, str]] = []
        audits: list[tuple[str, str]] = []
        applied: list[str] = []  # exceptions that took a value out of a rule's findings
        for rule, level in rules:
            if spec is None and req.action in SPEC_BUILDERS:
                continue  # e.g. a modern start: no body, nothing to check
            try:
                problems, used = excs.check(rule, req, spec, ctx, self.policy.exceptions)
                applied += used
            except LookupFailed as exc:
                problems = [f"{exc} (dockguard cannot check this rule without it)"]
            except BodyError as exc:
                return self._deny_malformed(req, str(exc))
            if problems:
                (denies if level == "deny" else audits).append((rule.id, finding(rule, problems)))

        self._judge_existing(req, ctx, denies, audits, applied)
        if lifecycle and not denies:
            level = self.policy.level(LIMIT.id)
            if level != "off":
                key = (req.method, req.uri)
                if not self.inflight.try_start(key, self.policy.max_inflight):
                    text = finding(LIMIT, f"{self.policy.max_inflight} lifecycle operations already in flight")
                    (denies if level == "deny" else audits).append((LIMIT.id, text))
        if denies:
            msg = PREFIX + " ".join(t for _, t in denies)
            ids = tuple(i for i, _ in denies)
            self._audit(req, "deny", ids + tuple(i for i, _ in audits), msg, spec, applied)
            return Decision(False, msg, ids)
        if audits:
            self._audit(req, "audit", tuple(i for i, _ in audits), " ".join(t for _, t in audits),
                        spec, applied)
        else:
            self._audit(req, "allow", (), "", spec, applied)
        return Decision(True)

    # ---- AuthZRes ----
    def response(self, data: bytes) -> Decision:
        """The response is already made; we only close the in-flight entry. Always allow."""
        try:
            req = parse_envelope(data, max_body=MAX_BODY)
        except EnvelopeError:
            return Decision(True)
        action, _ = route(req.method, req.path)
        if action in LIFECYCLE_ACTIONS:
            self.inflight.finish((req.method, req.uri))
        return Decision(True)

    # ---- existing containers (authz/existing.py) ----
    def _judge_existing(self, req: AuthzRequest, ctx, denies: list, audits: list,
                        applied: list) -> None:
        """Start, restart, exec, attach, unpause, update: the container's own effective
        configuration judged by the create rules (one inspect, memoised in ctx)."""
        if req.action not in existing.JUDGED_ACTIONS:
            return
        if self._existing_rules is None:
            self._existing_rules = existing.rules_for_existing(self.policy)
        for f in existing.check_request(req, ctx, self._existing_rules, self.policy.exceptions):
            (denies if f.level == "deny" else audits).append((f.rule, f.text))
            applied += f.exceptions

    # ---- helpers ----
    def _deny_malformed(self, req: AuthzRequest | None, why: str) -> Decision:
        msg = (f"{PREFIX}[malformed-request] {why}: a request dockguard cannot read is refused "
               "(fail closed). Safely: send the request as the docker CLI does (a JSON body with "
               "Content-Type: application/json, under 1 MiB).")
        if req is None:
            self.audit.write(action="unknown", method="", uri="", container="", decision="deny",
                             rules=["malformed-request"], user="", msg=msg,
                             policy_hash=self.policy.policy_hash)
        else:
            self._audit(req, "deny", ("malformed-request",), msg)
        return Decision(False, msg, ("malformed-request",))

    def _audit(self, req: AuthzRequest, decision: str, rules, msg: str = "", spec=None,
                applied=()) -> None:
        if decision == "allow" and not applied:
            allowed = self.policy.audit_allowed  # [audit] allowed: all | changes | none
            if allowed == "none" or (allowed == "changes" and req.method in ("GET", "HEAD")):
                return
        container = req.name or (req.q("name") if req.action == "container.create" else "")
        image = spec.image if spec is not None and req.action == "container.create" else ""
        agent = req.header("user-agent")
        self.audit.write(action=req.action, method=req.method, uri=req.uri, container=container,
                         decision=decision, rules=list(rules), user=req.user, msg=msg,
                         image=image, client=agent if isinstance(agent, str) else "",
                         exceptions=list(dict.fromkeys(applied)),
                         policy_hash=self.policy.policy_hash)
