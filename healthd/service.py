"""Wiring: observations from the event thread -> watches -> one heap -> probes -> the state
machine -> the store, and exit-on-unhealthy.

Everything that changes state runs on one asyncio loop thread, so there are no locks: the
event thread posts typed messages (healthd/events.py), checks are awaited on the loop
(exec checks through the exec API, healthd/execapi.py). A watch is replaced, never mutated in place, when its container restarts, and each
check carries the watch it was started for, so a result that arrives for a replaced or
dropped watch is discarded: a reconnect or a replayed event cannot double a schedule.

exit-on-unhealthy: on the transition into `unhealthy` the container is killed with SIGKILL
through the API (it exits 137); if the kill fails, checks go on and the next unhealthy
result tries again. Docker treats an API kill as a manual stop: its restart
policy (even `always`) does not bring it back, and the policy itself is left untouched for
the next `docker start` (a later dockerd restart applies `always` as for any `docker kill`,
and checks then start again from `starting`). Only containers whose own labels ask for it
are ever killed.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from dockguard import util

from . import machine
from .config import CheckSpec, spec_from_labels
from .events import Disconnected, EventSource, Gone, Message, Seen, Snapshot, View
from .execapi import AsyncExec
from .machine import DaemonUnreachable, Health, Result
from .netns import NetnsSockets, open_netns
from .probes import http_probe, tcp_finish, tcp_result, tcp_start
from .scheduler import Scheduler
from .store import Store, health_from_json, health_to_json

log = logging.getLogger("healthd")
USER_AGENT = f"dockguard-healthd/{__import__('dockguard').__version__}"
DEFAULT_STATE_DIR = Path("/var/lib/dockguard/health")
LAG_BUCKET = 0.00025          # lag histogram resolution: 0.25 ms
LOG_FLUSH = 5.0               # log-only changes: at most one write per container per 5 s
METRICS_FILE = ".metrics.json"


def default_docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


@dataclass(eq=False)
class Watch:
    """One running container the sidecar checks (or, kind 'engine', follows)."""

    id: str
    name: str
    spec: CheckSpec
    started_at: float
    started_raw: str
    pid: int
    health: Health
    nsfd: int | None = None
    killed: bool = False
    last_write: float = float("-inf")     # loop time of the last state-file write
    dirty: bool = False                   # log entries not yet written


class Metrics:
    """Counters for the benchmark: checks per kind and a histogram of due->start lag."""

    def __init__(self) -> None:
        self.started = time.time()
        self.checks: dict[str, int] = {}
        self.lag_hist: dict[int, int] = {}
        self.lag_max = 0.0
        self.not_run = 0                   # checks not run: dockerd unreachable

    def lag(self, seconds: float) -> None:
        b = max(0, int(seconds / LAG_BUCKET))
        self.lag_hist[b] = self.lag_hist.get(b, 0) + 1
        if seconds > self.lag_max:
            self.lag_max = seconds

    def to_json(self) -> dict:
        return {"pid": os.getpid(), "time": time.time(), "checks": self.checks,
                "lag_bucket_s": LAG_BUCKET, "lag_hist": {str(k): v for k, v in self.lag_hist.items()},
                "lag_max_s": self.lag_max, "not_run": self.not_run}


class Service:
    def __init__(self, docker_host: str, state_dir: Path, log_flush: float = LOG_FLUSH, *,
                 events=None, execs=None, api=None) -> None:
        """`events(client_factory, post)`, `execs` and `api`: stand-ins for tests (the event
        thread, the exec transport and the SDK client that kills); by default the real ones."""
        self.log_flush = log_flush
        self.docker_host = docker_host
        self.store = Store(state_dir)
        self.sched = Scheduler()
        self.watches: dict[str, Watch] = {}
        self.metrics = Metrics()
        self.connected = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Task] = set()
        self._reported: dict[str, tuple] = {}
        self._unreachable = False          # an exec check found dockerd unreachable
        self._events_factory = events or EventSource
        self.execs = execs
        self.api = api
        self.stop = asyncio.Event()

    def client(self):
        import docker
        # its own User-Agent: the plugin's audit lines name healthd as the client of its kills
        return docker.APIClient(base_url=self.docker_host, version="1.41", timeout=None,
                                user_agent=USER_AGENT)

    # --- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        self.store.open()
        self.loop = asyncio.get_running_loop()
        self.sockets = NetnsSockets()
        self.execs = self.execs or AsyncExec(self.docker_host)
        self.api = self.api or self.client()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.stop.set)
        self.events = self._events_factory(self.client, self._post)
        log.info("healthd %d: docker %s, state %s", os.getpid(), self.docker_host, self.store.root)
        self.events.start()
        background = [asyncio.create_task(self._write_metrics_forever()),
                      asyncio.create_task(self._flush_forever())]
        try:
            await self.stop.wait()
        finally:
            log.info("stopping")
            for t in background:
                t.cancel()
            self.events.stop()
            try:
                async with asyncio.timeout(5):
                    await self.execs.shutdown()
            except TimeoutError:
                log.warning("could not kill every running check process in time")
            self._pause_all()      # writes what was pending
            self.execs.close()
            self.sockets.close()
            self.store.close()

    def _post(self, msg: Message) -> None:
        """Called from the event thread: hand the message to the loop, in order."""
        self.loop.call_soon_threadsafe(self._on_message, msg)

    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, Snapshot):
            self.connected = True
            self._pause_all()      # every watched running container goes back to starting
            for v in msg.views:
                self._observe(v)
            for cid in self.store.ids():
                if cid not in msg.all_ids:
                    log.info("%s: container no longer exists; dropping its state", cid[:12])
                    self.store.delete(cid)
            self._write_metrics()
        elif isinstance(msg, Seen):
            self._observe(msg.view)
        elif isinstance(msg, Gone):
            self._unwatch(msg.id)
            self._reported.pop(msg.id, None)
            self.store.delete(msg.id)
        elif isinstance(msg, Disconnected):
            self.connected = False
            self._pause_all()
            self._write_metrics()

    # --- reconciling watches with what containers are -------------------------------------
    def _observe(self, v: View) -> None:
        old = self.watches.get(v.id)
        if not v.running:
            if old is not None:
                log.info("%s (%s): stopped; checks paused until it starts again", v.name, v.id[:12])
            self._unwatch(v.id)
            return
        spec, problems = spec_from_labels(v.labels, v.engine_healthcheck)
        if problems:
            self._unwatch(v.id)
            key = (v.started_raw, tuple(problems))
            if self._reported.get(v.id) != key:
                self._reported[v.id] = key
                log.error("%s (%s): not watched, bad health labels: %s", v.name, v.id[:12],
                          "; ".join(problems))
                self._write(v.id, v.name, None, self._stored_health(v.id, status="none"),
                            watched=False, problems=problems)
            return
        if spec is None:
            self._unwatch(v.id)
            return
        if old is not None and old.started_raw == v.started_raw and old.pid == v.pid \
                and old.spec == spec:
            if old.name != v.name:
                old.name = v.name
                self._save(old)
            if spec.kind == "engine":
                self._engine_update(old, v)
            return
        self._unwatch(v.id)
        self._watch(v, spec)

    def _stored_health(self, cid: str, status: str | None = None) -> Health:
        rec = self.store.load(cid)
        h = health_from_json(rec["Health"]) if rec else Health()
        return Health(status, h.failing_streak, h.log) if status else h

    def _watch(self, v: View, spec: CheckSpec) -> None:
        if spec.kind == "engine":
            w = Watch(v.id, v.name, spec, v.started_at, v.started_raw, v.pid, Health())
            self.watches[v.id] = w
            log.info("%s (%s): following the engine's HEALTHCHECK (exit-on-unhealthy=%s)",
                     v.name, v.id[:12], spec.exit_on_unhealthy)
            self._engine_update(w, v)
            return
        nsfd = None
        if spec.kind in ("tcp", "http"):
            try:
                nsfd = open_netns(v.pid)
            except OSError as exc:
                log.error("%s (%s): cannot open its network namespace: %s", v.name, v.id[:12], exc)
                return
        health = machine.started(self._stored_health(v.id))
        w = Watch(v.id, v.name, spec, v.started_at, v.started_raw, v.pid, health, nsfd)
        self.watches[v.id] = w
        self._save(w)
        log.info("%s (%s): watching, %s every %gs (timeout %gs, start-period %gs, retries %d, "
                 "exit-on-unhealthy=%s): starting", v.name, v.id[:12], spec.describe(),
                 spec.interval, spec.timeout, spec.start_period, spec.retries,
                 spec.exit_on_unhealthy)
        self.sched.schedule(v.id, self.loop.time() + spec.interval)
        self._arm()

    def _unwatch(self, cid: str) -> None:
        w = self.watches.pop(cid, None)
        self.sched.cancel(cid)
        if w is None:
            return
        if w.dirty:
            self._save(w, force=True)
        if w.nsfd is not None:
            os.close(w.nsfd)
            w.nsfd = None

    def _pause_all(self) -> None:
        for cid in list(self.watches):
            self._unwatch(cid)
        self._arm()

    # --- engine HEALTHCHECK containers ------------------------------------------------------
    def _engine_update(self, w: Watch, v: View) -> None:
        eh = v.engine_health or {}
        status = eh.get("Status") or "starting"
        try:
            h = health_from_json({"Status": status, "FailingStreak": eh.get("FailingStreak") or 0,
                                  "Log": eh.get("Log") or []})
        except (ValueError, KeyError, TypeError):
            h = Health(status if status in ("starting", "healthy", "unhealthy") else "starting")
        before, w.health = w.health, h
        self._save(w)
        if h.status != before.status:
            log.info("%s (%s): engine reports %s", w.name, w.id[:12], h.status)
        if h.status == machine.UNHEALTHY and w.spec.exit_on_unhealthy and not w.killed:
            self._exit_on_unhealthy(w)

    # --- scheduling and running checks -------------------------------------------------------
    def _arm(self) -> None:
        nd = self.sched.next_due()
        if nd is None:
            if self._timer:
                self._timer.cancel()
            self._timer = self._timer_at = None
            return
        if self._timer is not None and self._timer_at is not None and self._timer_at <= nd:
            return
        if self._timer:
            self._timer.cancel()
        self._timer_at = nd
        self._timer = self.loop.call_at(nd, self._tick)

    def _tick(self) -> None:
        self._timer = self._timer_at = None
        now = self.loop.time()
        for cid, due in self.sched.pop_due(now):
            w = self.watches.get(cid)
            if w is None:
                continue
            self.metrics.lag(self.loop.time() - due)
            if w.spec.kind == "tcp":
                self._tcp(w)
            else:
                self._spawn(self._check(w))
        self._arm()

    def _spawn(self, coro) -> None:
        t = self.loop.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _tcp(self, w: Watch) -> None:
        """The hot path: a loopback connect is decided synchronously, no task needed."""
        spec = w.spec
        start = time.time()
        try:
            sock, err = tcp_start(self.sockets, w.nsfd, spec.port)
        except OSError as exc:
            self._finish(w, spec, start, 1, f"tcp probe: {exc}")
            return
        if sock is None:
            code, out = tcp_result(spec.port, err)
            self._finish(w, spec, start, code, out)
        else:
            async def slow() -> None:
                code, out = await tcp_finish(sock, spec.port, spec.timeout)
                self._finish(w, spec, start, code, out)
            self._spawn(slow())

    async def _check(self, w: Watch) -> None:
        spec = w.spec
        start = time.time()
        try:
            if spec.kind == "http":
                code, out = await http_probe(self.sockets, w.nsfd, spec.port, spec.path, spec.timeout)
            else:
                code, out = await self.execs.run(w.id, spec.argv, spec.timeout)
        except DaemonUnreachable as exc:
            self._not_run(w, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a probe bug is a failed check, logged
            log.exception("%s: probe error", w.name)
            code, out = -1, f"probe error: {exc}"
        self._finish(w, spec, start, code, out)

    def _not_run(self, w: Watch, exc: DaemonUnreachable) -> None:
        """dockerd did not answer: no result of the container, so nothing is recorded and
        health, streak and log stay as they were. Logged once per outage. The check is tried
        again after the interval; if the event stream is lost too, `Disconnected` pauses
        every watch and the schedule resumes with the next snapshot."""
        self.metrics.not_run += 1
        if self.watches.get(w.id) is not w:
            return
        if not self._unreachable:
            self._unreachable = True
            log.warning("dockerd unreachable (%s): checks not run, nothing recorded for the "
                        "containers until it answers", exc)
        self.sched.schedule(w.id, self.loop.time() + w.spec.interval)
        self._arm()

    def _finish(self, w: Watch, spec: CheckSpec, start: float, code: int, out: str) -> None:
        """Apply one result: state machine, store, exit-on-unhealthy, next due time."""
        end = time.time()
        self.metrics.checks[spec.kind] = self.metrics.checks.get(spec.kind, 0) + 1
        if self.watches.get(w.id) is not w:
            return                 # unwatched or replaced while the check ran: drop the result
        if self._unreachable and spec.kind == "cmd":
            self._unreachable = False
            log.info("dockerd answers again: exec checks resumed")
        before = w.health
        w.health = machine.apply(before, Result(start, end, code, out), retries=spec.retries,
                                 start_period=spec.start_period, started_at=w.started_at)
        changed = (w.health.status, w.health.failing_streak) != (before.status, before.failing_streak)
        if w.health.status != before.status:
            log.info("%s (%s): %s -> %s (FailingStreak %d, last exit %d)", w.name, w.id[:12],
                     before.status, w.health.status, w.health.failing_streak, code)
        self._save(w, force=changed)
        # normally this fires on the transition into unhealthy (checks then stop); if the
        # kill failed, checks went on and the next unhealthy result tries again
        if w.health.status == machine.UNHEALTHY and spec.exit_on_unhealthy and not w.killed:
            self._exit_on_unhealthy(w)
            return
        self.sched.schedule(w.id, self.loop.time() + spec.interval)
        self._arm()

    def _exit_on_unhealthy(self, w: Watch) -> None:
        """Kill (SIGKILL -> exit 137); checks resume only when the container starts again."""
        w.killed = True
        self.sched.cancel(w.id)
        log.warning("%s (%s): unhealthy and exit-on-unhealthy=true: killing it (SIGKILL)",
                    w.name, w.id[:12])

        def kill() -> None:
            try:
                self.api.kill(w.id, signal="SIGKILL")
            except Exception as exc:  # noqa: BLE001 - e.g. refused, or it already exited
                log.error("%s (%s): kill failed: %s", w.name, w.id[:12],
                          getattr(exc, "explanation", None) or exc)
                self.loop.call_soon_threadsafe(self._kill_failed, w)

        self.loop.run_in_executor(None, kill)

    def _kill_failed(self, w: Watch) -> None:
        """Keep checking a container we could not kill; the next unhealthy result retries."""
        if self.watches.get(w.id) is w and w.spec.kind != "engine":
            w.killed = False
            self.sched.schedule(w.id, self.loop.time() + w.spec.interval)
            self._arm()
        elif self.watches.get(w.id) is w:
            w.killed = False      # engine: the next health_status event retries

    # --- persistence -------------------------------------------------------------------------
    def _save(self, w: Watch, force: bool = True) -> None:
        """Status and streak changes are written at once; a change that only adds a log
        entry is written if the last write is older than `log_flush`, else left to the
        flusher (on this kind of disk an atomic replace costs ~0.6 ms of CPU: writing every
        1 s probe of 500 containers would cost more than the probes)."""
        now = self.loop.time()
        if force or now - w.last_write >= self.log_flush:
            w.last_write, w.dirty = now, False
            self._write(w.id, w.name, w.spec, w.health, watched=True)
        else:
            w.dirty = True

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            cutoff = self.loop.time() - self.log_flush
            for w in list(self.watches.values()):
                if w.dirty and w.last_write <= cutoff:
                    self._save(w, force=True)

    def _write(self, cid: str, name: str, spec: CheckSpec | None, h: Health, *,
               watched: bool, problems: list[str] | None = None) -> None:
        rec = {"Id": cid, "Name": name, "Watched": watched,
               "Check": spec.to_json() if spec else None, "Health": health_to_json(h)}
        if problems:
            rec["Problems"] = problems
        try:
            self.store.write(cid, rec)
        except OSError as exc:
            log.error("%s: cannot write state: %s", cid[:12], exc)

    def _write_metrics(self) -> None:
        data = self.metrics.to_json()
        data["watched"] = len(self.watches)
        data["scheduled"] = len(self.sched)
        data["connected"] = self.connected
        util.atomic_write(self.store.root / METRICS_FILE, json.dumps(data), durable=False)

    async def _write_metrics_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._write_metrics()


def run(docker_host: str, state_dir: Path, log_flush: float = LOG_FLUSH) -> int:
    svc = Service(docker_host, state_dir, log_flush=log_flush)
    asyncio.run(svc.run())
    return 0
