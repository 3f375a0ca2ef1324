"""The service against a fake event stream, a fake exec transport and a fake killer: no
Docker. Messages are the typed ones the event thread posts (healthd/events.py)."""
from __future__ import annotations

import asyncio
import json

import pytest

from healthd.events import Disconnected, Gone, Seen, Snapshot, View
from healthd.service import METRICS_FILE, Service
from healthd.store import read_all

P = "dockguard.health."
CID = "a" * 64
OTHER = "b" * 64


def view(cid=CID, *, labels=None, running=True, started="2024-01-01T00:00:00Z", pid=0, name="c1"):
    return View(id=cid, name=name, running=running, pid=pid, started_at=0.0, started_raw=started,
                labels=labels if labels is not None else {})


def cmd_labels(**extra):
    return {P + "cmd": "check", P + "interval": "20ms", P + "retries": "2", **extra}


class FakeEvents:
    """Stands in for EventSource: the test posts through `post` as the event thread would."""

    def __init__(self, client_factory, post):
        self.post = post
        self.started = self.stopped = False

    def start(self):
        self.started = True

    def stop(self):
        self.stopped = True


class FakeExecs:
    def __init__(self, results=None):
        self.calls: list[tuple[str, tuple]] = []
        self.results = results or {}
        self.shut = False

    async def run(self, cid, argv, timeout):
        self.calls.append((cid, argv))
        return self.results.get(cid, (0, "ok"))

    async def shutdown(self):
        self.shut = True

    def close(self):
        pass


class FakeApi:
    def __init__(self, fail=False):
        self.killed: list[tuple[str, str]] = []
        self.fail = fail

    def kill(self, cid, signal):
        self.killed.append((cid, signal))
        if self.fail:
            raise RuntimeError("refused")


async def until(pred, timeout=10.0, what="condition"):
    """Poll on the loop (the machine may be slow: generous limit, no fixed sleeps)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def run_service(tmp_path, scenario, *, execs=None, api=None):
    """Run the service on a loop of its own with the fakes; `scenario(svc, events)` drives it
    and returns; then the service is stopped as SIGTERM would."""
    execs = execs or FakeExecs()
    api = api or FakeApi()
    holder = {}

    def events_factory(client_factory, post):
        holder["events"] = FakeEvents(client_factory, post)
        return holder["events"]

    async def main():
        svc = Service("unix:///nonexistent.sock", tmp_path / "state", events=events_factory,
                      execs=execs, api=api)
        task = asyncio.create_task(svc.run())
        await until(lambda: "events" in holder and holder["events"].started, what="service start")
        try:
            await scenario(svc, holder["events"])
        finally:
            svc.stop.set()
            await task
        return svc

    svc = asyncio.run(main())
    assert holder["events"].stopped and execs.shut
    return svc, execs, api


def records(tmp_path):
    return {r["Id"]: r for r in read_all(tmp_path / "state")}


def test_snapshot_watches_and_checks_labelled_containers(tmp_path):
    async def scenario(svc, ev):
        ev.post(Snapshot([view(labels=cmd_labels())], {CID, OTHER}))
        await until(lambda: len(svc.execs.calls) >= 2, what="two checks")
        await until(lambda: records(tmp_path).get(CID, {}).get("Health", {}).get("Status") == "healthy",
                    what="healthy state file")
        assert svc.connected

    svc, execs, api = run_service(tmp_path, scenario)
    assert {c for c, _ in execs.calls} == {CID}
    assert execs.calls[0][1] == ("/bin/sh", "-c", "check")
    assert api.killed == []
    assert svc.metrics.checks["cmd"] >= 2
    metrics = json.loads((tmp_path / "state" / METRICS_FILE).read_text())
    assert metrics["connected"] is True and metrics["pid"] > 0   # written at the snapshot


def test_unhealthy_with_exit_on_unhealthy_is_killed_once(tmp_path):
    execs = FakeExecs({CID: (1, "down")})

    async def scenario(svc, ev):
        ev.post(Snapshot([view(labels=cmd_labels(**{P + "exit-on-unhealthy": "true"}))], {CID}))
        await until(lambda: svc.api.killed, what="a kill")
        n = len(execs.calls)
        await asyncio.sleep(0.2)          # ten intervals: no check after the kill
        assert len(execs.calls) == n

    svc, execs, api = run_service(tmp_path, scenario, execs=execs)
    assert api.killed == [(CID, "SIGKILL")]
    assert len(execs.calls) == 2          # retries=2: the second failure makes it unhealthy
    rec = records(tmp_path)[CID]
    assert rec["Health"]["Status"] == "unhealthy" and rec["Health"]["FailingStreak"] == 2


def test_unhealthy_without_the_label_is_not_killed(tmp_path):
    execs = FakeExecs({CID: (1, "down")})

    async def scenario(svc, ev):
        ev.post(Snapshot([view(labels=cmd_labels())], {CID}))
        await until(lambda: len(execs.calls) >= 4, what="checks going on")

    svc, execs, api = run_service(tmp_path, scenario, execs=execs)
    assert api.killed == []
    assert records(tmp_path)[CID]["Health"]["Status"] == "unhealthy"


def test_a_failed_kill_is_retried_on_the_next_unhealthy_result(tmp_path):
    execs = FakeExecs({CID: (1, "down")})

    async def scenario(svc, ev):
        ev.post(Snapshot([view(labels=cmd_labels(**{P + "exit-on-unhealthy": "true"}))], {CID}))
        await until(lambda: len(svc.api.killed) >= 2, what="a second kill")

    run_service(tmp_path, scenario, execs=execs, api=FakeApi(fail=True))


def test_replayed_view_does_not_double_the_schedule(tmp_path):
    async def scenario(svc, ev):
        v = view(labels=cmd_labels(**{P + "interval": "50ms"}))
        ev.post(Snapshot([v], {CID}))
        for _ in range(20):
            ev.post(Seen(v))              # the same container, as a replayed event shows it
        await until(lambda: CID in svc.watches, what="watch")
        w = svc.watches[CID]
        await asyncio.sleep(0.3)
        assert svc.watches[CID] is w and len(svc.sched) == 1

    svc, execs, api = run_service(tmp_path, scenario)
    assert 1 <= len(execs.calls) <= 12   # ~6 intervals in 0.3 s; twenty schedules would be far more


def test_restart_replaces_the_watch(tmp_path):
    async def scenario(svc, ev):
        ev.post(Snapshot([view(labels=cmd_labels())], {CID}))
        await until(lambda: CID in svc.watches, what="watch")
        first = svc.watches[CID]
        ev.post(Seen(view(labels=cmd_labels(), started="2024-01-01T00:01:00Z")))
        await until(lambda: svc.watches.get(CID) not in (None, first), what="a new watch")
        assert svc.watches[CID].health.status == "starting"

    run_service(tmp_path, scenario)


def test_stop_gone_and_disconnect(tmp_path):
    async def scenario(svc, ev):
        ev.post(Snapshot([view(labels=cmd_labels()), view(OTHER, labels=cmd_labels(), name="c2")],
                         {CID, OTHER}))
        await until(lambda: {CID, OTHER} <= set(records(tmp_path)), what="two state files")
        ev.post(Seen(view(labels=cmd_labels(), running=False)))
        await until(lambda: CID not in svc.watches, what="stopped: unwatched")
        assert CID in records(tmp_path)          # a stopped container keeps its state
        ev.post(Gone(OTHER))
        await until(lambda: OTHER not in records(tmp_path), what="destroyed: state dropped")
        ev.post(Disconnected("test"))
        await until(lambda: not svc.connected and not svc.watches, what="paused on disconnect")
        assert len(svc.sched) == 0

    run_service(tmp_path, scenario)


def test_snapshot_drops_state_of_containers_that_no_longer_exist(tmp_path):
    async def scenario(svc, ev):
        ev.post(Snapshot([view(labels=cmd_labels())], {CID}))
        await until(lambda: CID in records(tmp_path), what="state file")
        ev.post(Snapshot([], set()))
        await until(lambda: CID not in records(tmp_path), what="state dropped")

    run_service(tmp_path, scenario)


def test_bad_labels_are_reported_not_watched(tmp_path):
    async def scenario(svc, ev):
        ev.post(Snapshot([view(labels={P + "cmd": "true", P + "bogus": "1"})], {CID}))
        await until(lambda: CID in records(tmp_path), what="a record of the problem")

    svc, execs, api = run_service(tmp_path, scenario)
    rec = records(tmp_path)[CID]
    assert rec["Watched"] is False and any("bogus" in p for p in rec["Problems"])
    assert execs.calls == []


@pytest.mark.parametrize("host,address", [("unix:///run/x.sock", "/run/x.sock"),
                                          ("tcp://127.0.0.1:2375", ("127.0.0.1", 2375)),
                                          ("tcp://[::1]:2375", ("::1", 2375))])
def test_exec_transport_reaches_unix_and_tcp_hosts(host, address):
    from healthd.execapi import AsyncExec, parse_host
    assert parse_host(host) == address and AsyncExec(host).address == address


def test_exec_transport_refuses_other_hosts():
    from healthd.execapi import parse_host
    for bad in ("ssh://host", "tcp://host", "/run/docker.sock", "npipe:////./pipe/x"):
        with pytest.raises(ValueError):
            parse_host(bad)
