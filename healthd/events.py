"""The daemon's event stream, turned into observations of containers, with reconnect.

One thread owns the connection. On every (re)connect it takes one snapshot (one container
list, and an inspect of each container that carries dockguard.health.* labels), then follows
`/events` from a moment *before* the snapshot, so nothing that happens while listing is
missed. Every event of interest is turned into a fresh inspect of that container, so
replayed or duplicated events are harmless: the service reconciles with what the container
*is*, not with what an event says happened. It never polls container lists in a loop.

Messages posted to the service (in order), one class each (below):
  Snapshot(views, all_ids)   after each (re)connect
  Seen(view)                 a labelled container changed
  Gone(id)                   destroyed
  Disconnected(reason)       the stream ended; reconnecting with backoff
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace

from .config import KINDS, PREFIX, container_over_image
from .store import parse_rfc3339

log = logging.getLogger("healthd.events")
ACTIONS = ("start", "die", "destroy", "rename", "health_status")


@dataclass(frozen=True)
class View:
    """What the service needs to know about one container, from one inspect."""

    id: str
    name: str
    running: bool
    pid: int
    started_at: float
    started_raw: str
    labels: dict = field(default_factory=dict, compare=False)
    engine_healthcheck: bool = False
    engine_health: dict | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Snapshot:
    views: list
    all_ids: set


@dataclass(frozen=True)
class Seen:
    view: View


@dataclass(frozen=True)
class Gone:
    id: str


@dataclass(frozen=True)
class Disconnected:
    reason: str


Message = Snapshot | Seen | Gone | Disconnected


def view_from_inspect(d: dict) -> View:
    cfg = d.get("Config") or {}
    state = d.get("State") or {}
    test = ((cfg.get("Healthcheck") or {}).get("Test")) or []
    started_raw = state.get("StartedAt") or "0001-01-01T00:00:00Z"
    try:
        started = parse_rfc3339(started_raw)
    except ValueError:
        started = 0.0
    return View(
        id=d["Id"], name=(d.get("Name") or "").lstrip("/"),
        running=bool(state.get("Running")) and not state.get("Restarting"),
        pid=int(state.get("Pid") or 0), started_at=started, started_raw=started_raw,
        labels=dict(cfg.get("Labels") or {}),
        engine_healthcheck=bool(test) and test[0] != "NONE",
        engine_health=state.get("Health"))


def has_health_labels(labels: dict | None) -> bool:
    return any(k.startswith(PREFIX) for k in (labels or {}))


class EventSource(threading.Thread):
    """Connect, snapshot, follow; on any break post `disconnected` and retry with backoff."""

    def __init__(self, client_factory, post, min_backoff: float = 0.1,
                 max_backoff: float = 2.0) -> None:
        super().__init__(name="events", daemon=True)
        self._factory = client_factory
        self._post = post
        self._min, self._max = min_backoff, max_backoff
        self._stop = threading.Event()
        self._stream = None

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - closing a dead stream
                pass

    def run(self) -> None:
        delay = self._min
        connected = False
        while not self._stop.is_set():
            try:
                api = self._factory()
                api.ping()
                connected = True
                delay = self._min
                self._follow(api)
                reason = "event stream ended (dockerd stopped?)"
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                reason = f"{type(exc).__name__}: {exc}"
            if self._stop.is_set():
                return
            if connected:
                log.warning("lost docker (%s); reconnecting with backoff", reason)
                self._post(Disconnected(reason))
            elif not getattr(self, "_warned", False):
                self._warned = True
                log.warning("docker not reachable (%s); retrying with backoff", reason)
            else:
                log.debug("docker unavailable (%s); retrying in %.1fs", reason, delay)
            connected = False
            self._stop.wait(delay)
            delay = min(delay * 2, self._max)

    def _follow(self, api) -> None:
        since = time.time() - 1.0   # same host; a second of replay is harmless
        views, all_ids = [], set()
        for c in api.containers(all=True):
            all_ids.add(c["Id"])
            if has_health_labels(c.get("Labels")):
                v = self._inspect(api, c["Id"])
                if v is not None:
                    views.append(v)
        stream = api.events(since=f"{since:.6f}", decode=True,
                            filters={"type": ["container"], "event": list(ACTIONS)})
        self._stream = stream
        self._post(Snapshot(views, all_ids))
        log.info("connected to docker: %d containers, %d with dockguard.health labels",
                 len(all_ids), len(views))
        for ev in stream:
            if self._stop.is_set():
                return
            action = (ev.get("Action") or ev.get("status") or "").split(":")[0]
            actor = ev.get("Actor") or {}
            cid = actor.get("ID") or ev.get("id")
            if not cid or action not in ACTIONS:
                continue
            if action == "destroy":
                self._post(Gone(cid))
                continue
            attrs = actor.get("Attributes") or {}
            if not has_health_labels(attrs):
                continue
            v = self._inspect(api, cid)
            self._post(Seen(v) if v is not None else Gone(cid))

    @staticmethod
    def _inspect(api, cid: str) -> View | None:
        import docker.errors
        try:
            d = api.inspect_container(cid)
        except docker.errors.NotFound:
            return None
        v = view_from_inspect(d)
        if sum(PREFIX + k in v.labels for k in KINDS) > 1:
            # two check kinds: one may come from the image (the container's own wins)
            try:
                img = ((api.inspect_image(d.get("Image") or "").get("Config") or {})
                       .get("Labels") or {})
            except docker.errors.APIError:
                img = {}
            v = replace(v, labels=container_over_image(v.labels, img))
        return v
