"""Shared helpers for the authz unit tests: plain data in, decisions out, no Docker.

- `FakeContext`: a `RequestContext` whose daemon lookups and host facts are plain dicts.
- `envelope(...)`: dockerd's AuthZ JSON for a request (key `RequestUri`, body base64).
- `decide(...)`: the whole engine (default policy unless given) over a `FakeContext`.
- `problems(rule_id, ...)`: one rule's check over a request, as the engine would call it.
"""
from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field

from authz import policy as policies
from authz.audit import AuditLog
from authz.context import DEFAULT_SOCKETS, LookupFailed, RequestContext
from authz.engine import SPEC_BUILDERS, Decision, Engine, MAX_BODY
from authz.request import parse_envelope
from authz.routes import route
from authz.rules import all_rules

_DEFAULT_POLICY = None


def default_policy():
    global _DEFAULT_POLICY
    if _DEFAULT_POLICY is None:
        _DEFAULT_POLICY = policies.load()
    return _DEFAULT_POLICY


class FakeContext(RequestContext):
    """RequestContext over plain dicts. `fail` names lookups that raise LookupFailed.

    `calls` records every daemon lookup made, so a test can assert one was never made.
    """

    def __init__(self, *, lists=None, containers=None, container_ids=None, image_configs=None,
                 plugins=None, volumes=None, docker_root="/var/lib/docker", realpaths=None, regular_files=(),
                 device_nodes=None, schedulers=None, blkio=True, self_names=(), fail=(),
                 cgroup_v2=True):
        super().__init__(lists or default_policy().lists, daemon=None, host=None,
                         self_names=frozenset(self_names))
        self.containers = dict(containers or {})
        self.ids = list(container_ids or [])
        self.image_configs = dict(image_configs or {})
        self.plugins = dict(plugins or {})
        self.volumes = dict(volumes or {})
        self.root = docker_root
        self.realpaths = dict(realpaths or {})
        self.regular_files = set(regular_files)
        self.device_nodes = dict(device_nodes or {})
        self.schedulers = dict(schedulers or {})
        self.blkio = blkio
        self.cgroup2 = cgroup_v2
        self.fail = set(fail)
        self.calls: list[tuple] = []

    def _lookup(self, what, *args):
        self.calls.append((what,) + args)
        if what in self.fail:
            raise LookupFailed(f"could not look up {what} {args!r}: connection refused")

    # daemon lookups
    def container(self, ref):
        self._lookup("container", ref)
        return self.containers.get(ref)

    def container_ids(self):
        self._lookup("container_ids")
        return list(self.ids)

    def image_config(self, ref):
        self._lookup("image_config", ref)
        return self.image_configs.get(ref, {})

    def plugin(self, name):
        self._lookup("plugin", name)
        return self.plugins.get(name)

    def volume(self, name):
        self._lookup("volume", name)
        return self.volumes.get(name)

    def docker_root(self):
        self._lookup("docker_root")
        return self.root

    # static paths: the policy's list and the standard sockets (no daemon socket to ask)
    def _static_paths(self):
        return frozenset(set(self.lists.sensitive_paths) | set(DEFAULT_SOCKETS))

    def daemon_paths(self):
        root = self.docker_root()
        return frozenset({root, self.realpaths.get(root, root)})

    def daemon_dirs(self):
        """The exec-root and containerd's directories: `dirs` if a test set it, else the defaults."""
        self._lookup("daemon_dirs")
        return frozenset(getattr(self, "dirs", None) or ("/var/run/docker", "/run/containerd"))

    # host facts
    def realpath(self, path):
        return self.realpaths.get(path, path)

    def is_regular_file(self, path):
        return path in self.regular_files

    def device_node(self, path):
        return self.device_nodes.get(path)

    def scheduler(self, device):
        return self.schedulers.get(device)

    def blkio_weight_supported(self):
        return self.blkio

    def cgroup_v2(self):
        return self.cgroup2


def _body_bytes(body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def envelope(method: str, uri: str, body=None, *, user: str = "", headers=None, status=None,
             raw: dict | None = None) -> bytes:
    """dockerd's authorization.Request as JSON: RequestMethod, RequestUri, RequestBody (b64)."""
    data = _body_bytes(body)
    if headers is None:  # as the docker CLI sends it: a Content-Length always, 0 without a body
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
    env = {
        "User": user,
        "UserAuthNMethod": "",
        "RequestMethod": method,
        "RequestUri": uri,
        "RequestHeaders": headers,
    }
    if data:
        env["RequestBody"] = base64.b64encode(data).decode("ascii")
    if status is not None:
        env["ResponseStatusCode"] = status
    if raw:
        env.update(raw)
    return json.dumps(env).encode("utf-8")


@dataclass
class Outcome:
    decision: Decision
    records: list[dict] = field(default_factory=list)
    ctx: FakeContext | None = None

    @property
    def allow(self) -> bool:
        return self.decision.allow

    @property
    def msg(self) -> str:
        return self.decision.msg

    @property
    def rules(self) -> tuple[str, ...]:
        return self.decision.rules

    @property
    def record(self) -> dict:
        assert len(self.records) == 1, self.records
        return self.records[0]


def make_engine(policy=None, ctx: FakeContext | None = None, stream=None, **ctx_kw):
    """An Engine over FakeContext(ctx_kw) (a fresh one per request unless `ctx` is given)."""
    pol = policy or default_policy()
    if ctx is None:
        factory = lambda: FakeContext(lists=pol.lists, **ctx_kw)  # noqa: E731
    else:
        factory = lambda: ctx  # noqa: E731
    stream = stream if stream is not None else io.StringIO()
    return Engine(pol, context_factory=factory, audit=AuditLog(stream)), stream


def decide(method: str, uri: str, body=None, *, policy=None, ctx: FakeContext | None = None,
           user: str = "", headers=None, **ctx_kw) -> Outcome:
    """One AuthZReq through a fresh Engine; the decision and its audit records."""
    if ctx is None:
        ctx = FakeContext(lists=(policy or default_policy()).lists, **ctx_kw)
    engine, stream = make_engine(policy, ctx=ctx)
    d = engine.request(envelope(method, uri, body, user=user, headers=headers))
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    return Outcome(d, records, ctx)


def create(body=None, *, name: str = "", **kw) -> Outcome:
    uri = "/v1.41/containers/create" + (f"?name={name}" if name else "")
    return decide("POST", uri, body if body is not None else {"Image": "busybox", "Cmd": ["true"]}, **kw)


def hc(**host_config) -> dict:
    """A benign create body with the given HostConfig fields."""
    return {"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config}


def request_for(method: str, uri: str, body=None):
    """The AuthzRequest and Spec the engine would hand to rules."""
    req = parse_envelope(envelope(method, uri, body), max_body=MAX_BODY)
    req.action, req.name = route(req.method, req.path)
    spec = None
    builder = SPEC_BUILDERS.get(req.action)
    if builder is not None and (req.body_raw or req.action != "container.start"):
        spec = builder(req, req.body())
    return req, spec


def problems(rule_id: str, method: str, uri: str, body=None, ctx: FakeContext | None = None, **ctx_kw):
    """Run one rule's check directly; its list of problems (or None)."""
    rule = all_rules()[rule_id]
    req, spec = request_for(method, uri, body)
    assert req.action in rule.actions, f"{rule_id} does not apply to {req.action}"
    facts = ctx or FakeContext(**ctx_kw)
    facts.request = req
    return rule.check(spec, facts)


def create_problems(rule_id: str, body, ctx: FakeContext | None = None, name: str = "", **ctx_kw):
    uri = "/v1.41/containers/create" + (f"?name={name}" if name else "")
    return problems(rule_id, "POST", uri, body, ctx=ctx, **ctx_kw)


def denied_by(out: Outcome, rule_id: str) -> str:
    """Assert `out` is a denial by `rule_id` with the rule's reason and hint; the message."""
    assert not out.allow, f"expected a denial by {rule_id}, got allow ({out.records})"
    assert rule_id in out.rules, (rule_id, out.rules, out.msg)
    assert f"[{rule_id}]" in out.msg
    assert out.msg.startswith(f"[{out.rules[0]}] ") or out.msg.startswith("[")  # dockerd names the plugin
    assert "Safely:" in out.msg
    return out.msg


def allowed(out: Outcome) -> None:
    assert out.allow, out.msg
    assert out.msg == ""
