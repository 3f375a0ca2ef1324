"""Existing containers judged by what they are, not by the request that made them.

A container made before dockguard guarded the daemon (or while a rule was off) was never
judged: `docker start` carries no configuration, so the request rules see nothing. Here its
effective configuration, as `docker inspect` reports it (labels and healthcheck already
merged with the image's, the mount points dockerd registered at create, including those
inherited by --volumes-from), is turned into the same `Spec` a create produces, and the
create rules are run over it. Bind sources are resolved *now*, on this host: a source
swapped for a symlink after create is judged by where it points at this start. A copy
(`docker cp`, which makes dockerd mount the container's binds) is judged by the mount rules.

Pure core: `spec_from_inspect` and `judge` take plain data and a context; the engine and
`dockguard preflight` are the edges that look containers up.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import gojson as g
from . import spec as specs
from .rules import LookupFailed
from .request import AuthzRequest
from .rules.mounts import norm

# Copies to and from a container: dockerd mounts the container's binds and volumes in its
# own namespace to copy, so `docker cp f c:/x/` into a container binding /etc writes the
# host's /etc. Only what a copy reaches is judged for them: the mounts.
ARCHIVE_ACTIONS = frozenset({"container.archive_put", "container.archive_get",
                             "container.archive_head", "container.copy"})
ARCHIVE_RULES = frozenset({"sensitive-mount", "volume-mount-type", "file-bind-mount"})

# Actions that run, resume or reach into an existing container. Stop, kill, pause, rename
# and delete only take something away, and stay allowed (they are how it is cleaned up).
JUDGED_ACTIONS = frozenset({"container.start", "container.restart", "exec.create",
                            "container.attach", "container.unpause", "container.update"}) | ARCHIVE_ACTIONS

# Create rules not applied to an existing container, and why (see the README):
SKIPPED = {
    "name-shadows-id": "about choosing a name; an existing name is judged at rename",
    "attach-stdin-only": "about the creating client's attach streams",
    "shell-without-tty": "a shell without a terminal only exits; nothing runs that could harm",
    "systemd-non-system": "unsupported, not unsafe; refusing it would only break a workload",
    "health-with-no-healthcheck": "contradicting options with no effect on what runs",
    "blkio-weight": "dockerd itself fails such a start, with its own message",
    "blkio-weight-device": "a performance setting; dockerd applies or refuses it itself",
    "runtime": "recorded at create; what the container runs is judged here by the other rules, "
               "and those under another runtime that start at boot are `dockguard preflight`'s",
}

WHY = "created before dockguard guarded this daemon, or while the rule was off"

RESTART_AT_BOOT = frozenset({"always", "unless-stopped", "on-failure"})


LOOKUP_FAILED = "existing-container"  # the id of a denial for a container not looked up


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str   # the rule's id, or LOOKUP_FAILED
    level: str  # deny | audit
    text: str   # "[rule] ...: reason. Safely: hint." (what the client is told)
    problems: tuple[str, ...] = ()  # what the rule saw, alone (for listings)
    exceptions: tuple[str, ...] = ()  # the policy's exceptions that applied (authz/exceptions.py)


def rules_for_existing(policy) -> tuple:
    """(rule, level) of every create rule that applies to an existing container (off excluded)."""
    return tuple((r, lvl) for r, lvl in policy.by_action.get("container.create", ())
                 if r.id not in SKIPPED)


def _obj(v):
    """Plain JSON data (from the SDK) as gojson values, so the create reader can read it."""
    if isinstance(v, dict):
        return g.Obj([(k, _obj(x)) for k, x in v.items()])
    if isinstance(v, list):
        return [_obj(x) for x in v]
    return v


def spec_from_inspect(info: dict, *, cgroup_v2: bool = True) -> specs.Spec:
    """`docker inspect` JSON -> the Spec a create of the same container would give.

    Binds, HostConfig.Mounts and VolumesFrom are replaced by the effective mount points
    (`Mounts`), which hold all three; HostConfig.Tmpfs is not among them and is kept.
    On a cgroup v1 host dockerd records `CgroupnsMode: host` for every container (its
    default there), so it is not told apart from one asked for and is not counted.
    Raises gojson.BodyError on data that is not what dockerd reports.
    """
    if not isinstance(info, dict):
        raise g.BodyError("container inspect data is not an object")
    cfg = dict(info.get("Config") or {})
    hc = dict(info.get("HostConfig") or {})
    for k in ("Binds", "Mounts", "VolumesFrom"):
        hc.pop(k, None)
    cfg.pop("Volumes", None)
    if not cgroup_v2 and str(hc.get("CgroupnsMode") or "").strip().lower() == "host":
        hc.pop("CgroupnsMode", None)
    body = {k: v for k, v in cfg.items() if k != "HostConfig"}
    body["HostConfig"] = hc
    spec = specs.from_create(_obj(body), str(info.get("Name") or "").lstrip("/"))
    # Config.Labels (and Healthcheck, Cmd) already hold the image's, merged by dockerd at
    # create; the image name may since point elsewhere, so it is not looked up again.
    spec.image = ""
    for m in info.get("Mounts") or []:
        if not isinstance(m, dict):
            raise g.BodyError("container Mounts entry is not an object")
        kind = str(m.get("Type") or "").lower()
        dest = str(m.get("Destination") or "")
        if kind == "volume":
            # named or anonymous, the volume is looked up by the rules (o=bind options)
            spec.mounts.append(specs.Mount("volume", str(m.get("Name") or ""), dest,
                                           not m.get("RW", True), str(m.get("Driver") or ""),
                                           origin="volume"))
        else:
            spec.mounts.append(specs.Mount(kind, str(m.get("Source") or ""), dest,
                                           not m.get("RW", True), origin=kind or "mount",
                                           propagation=str(m.get("Propagation") or "")))
    spec.apparmor_profile = str(info.get("AppArmorProfile") or "")
    return spec


def _create_view(req: AuthzRequest | None) -> AuthzRequest:
    """The request as the create rules expect it: action container.create, no query, no body
    (with no request, as `dockguard preflight` judges: a plain create)."""
    if req is None:
        return AuthzRequest(method="POST", uri="/containers/create", path="/containers/create",
                            version=None, query={}, body_raw=b"", action="container.create")
    return AuthzRequest(method="POST", uri=req.uri, path="/containers/create", version=req.version,
                        query={}, body_raw=b"", user=req.user, headers={},
                        action="container.create", name=req.name)


def _moved_sources(spec, ctx) -> list[str]:
    """Bind sources that now resolve somewhere else than they say (a symlink, perhaps swapped)."""
    out = []
    for m in spec.mounts:
        if m.kind == "bind" and m.source:
            real = ctx.realpath(norm(m.source))
            if real and real != norm(m.source):
                out.append(f"bind source {m.source} now resolves to {real}")
    return out


def judge(req: AuthzRequest | None, info: dict, ctx, rules, exceptions=()) -> list[Finding]:
    """Every problem the create rules find in an existing container's effective config."""
    if not rules:
        return []
    name = str(info.get("Name") or "").lstrip("/") or (req.name if req else "")
    cid = str(info.get("Id") or "")[:12]
    try:
        spec = spec_from_inspect(info, cgroup_v2=ctx.cgroup_v2())
    except g.BodyError as exc:
        return _failed(rules, f"could not read container {name}'s configuration: {exc}")
    view = _create_view(req)
    why = WHY
    moved = _moved_sources(spec, ctx)
    if moved:
        why += ", or " + "; ".join(moved) + " (changed since it was judged)"
    where = f"existing container {name} ({cid}), {why}"
    out = []
    from . import exceptions as excs
    for rule, level in rules:
        used = ()
        try:
            problems, used = excs.check(rule, view, spec, ctx, exceptions)
        except LookupFailed as exc:
            problems = [f"{exc} (dockguard cannot check this rule without it)"]
        except g.BodyError as exc:
            problems = [f"unreadable configuration: {exc}"]
        if not problems:
            continue
        if isinstance(problems, str):
            problems = [problems]
        text = (f"[{rule.id}] {'; '.join(problems)} in {where}: {rule.reason}. Safely: {rule.hint}; "
                f"for this container: stop and remove it (docker rm {name}) and create it again "
                "within the policy.")
        out.append(Finding(rule.id, level, text, tuple(problems), tuple(used)))
    return out


def _failed(rules, why: str) -> list[Finding]:
    """One finding for a container that could not be looked up or read: denies if any rule
    that needed it is at deny (fail closed), is audited otherwise."""
    level = "deny" if any(lvl == "deny" for _, lvl in rules) else "audit"
    ids = ", ".join(r.id for r, lvl in rules if lvl == level)
    text = (f"[{LOOKUP_FAILED}] {why}: dockguard cannot judge an existing container without it "
            f"(rules left unchecked: {ids}). Safely: retry when the daemon answers.")
    return [Finding(LOOKUP_FAILED, level, text, (why,))]


def disarms_restart(req: AuthzRequest) -> bool:
    """An update that sets the restart policy to "no": it only takes away, and is the fix
    `dockguard preflight` gives, so it is allowed on a violating container."""
    try:
        body = req.body()
        if not isinstance(body, g.Obj):
            return False
        return g.string(g.obj(body, "restartpolicy"), "name") == "no"
    except g.BodyError:
        return False


def check_request(req: AuthzRequest, ctx, rules, exceptions=()) -> list[Finding]:
    """The engine's stage: look the container up (memoised in ctx) and judge it."""
    if req.action not in JUDGED_ACTIONS or not rules or not req.name:
        return []
    if req.action == "container.update" and disarms_restart(req):
        return []
    if req.action in ARCHIVE_ACTIONS:
        rules = tuple((r, lvl) for r, lvl in rules if r.id in ARCHIVE_RULES)
        if not rules:
            return []
    try:
        info = ctx.container(req.name)
    except LookupFailed as exc:
        return _failed(rules, str(exc))
    if info is None:
        return []  # dockerd answers 404 itself
    return judge(req, info, ctx, rules, exceptions)
