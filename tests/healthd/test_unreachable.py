"""A check that could not be run because dockerd did not answer is no result of the container:
never logged, never counted toward the streak, never a reason to kill (issue 9). An exec that
ran and failed, or timed out, still is a result. No Docker: fake transports and a fake dockerd
on a unix socket."""
from __future__ import annotations

import asyncio
import json
import logging

import pytest

from healthd.events import Disconnected, Snapshot
from healthd.execapi import AsyncExec
from healthd.machine import DaemonUnreachable

from .test_service import CID, P, FakeExecs, cmd_labels, records, run_service, until, view

KILLABLE = cmd_labels(**{P + "exit-on-unhealthy": "true"})


class FlakyExecs(FakeExecs):
    """Healthy while dockerd answers; raises DaemonUnreachable while `down` is set."""

    def __init__(self):
        super().__init__()
        self.down = False
        self.not_run = 0

    async def run(self, cid, argv, timeout):
        self.calls.append((cid, argv))
        if self.down:
            self.not_run += 1
            raise DaemonUnreachable("exec create: [Errno 2] No such file or directory")
        return 0, "ok"


def health(tmp_path):
    return records(tmp_path).get(CID, {}).get("Health", {})


def test_unreachable_is_not_recorded_streak_kept_not_killed(tmp_path, caplog):
    execs = FlakyExecs()

    async def scenario(svc, ev):
        ev.post(Snapshot([view(labels=KILLABLE)], {CID}))
        await until(lambda: health(tmp_path).get("Status") == "healthy", what="healthy")
        await until(lambda: len(health(tmp_path).get("Log", [])) >= 2, what="two results")
        before = health(tmp_path)
        execs.down = True
        await until(lambda: execs.not_run >= 10, what="ten checks not run (retries is 2)")
        during = health(tmp_path)
        assert during == before or (during["Status"], during["FailingStreak"]) == ("healthy", 0)
        assert all(e["ExitCode"] == 0 for e in during["Log"])
        assert svc.watches[CID].health.failing_streak == 0
        execs.down = False
        n = len(execs.calls)
        await until(lambda: len(execs.calls) >= n + 3, what="checks resumed")
        await until(lambda: health(tmp_path)["Log"][-1]["Start"] > before["Log"][-1]["End"],
                    what="a new result recorded")

    with caplog.at_level(logging.INFO, logger="healthd"):
        svc, execs, api = run_service(tmp_path, scenario, execs=execs)
    assert api.killed == []
    h = health(tmp_path)
    assert (h["Status"], h["FailingStreak"]) == ("healthy", 0)
    assert all(e["ExitCode"] == 0 and "exec" not in e["Output"] for e in h["Log"])
    assert svc.metrics.not_run == execs.not_run >= 10
    warned = [r for r in caplog.records if "dockerd unreachable" in r.getMessage()]
    assert len(warned) == 1 and "No such file" in warned[0].getMessage()
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_unreachable_then_disconnect_pauses_and_snapshot_resumes(tmp_path):
    execs = FlakyExecs()

    async def scenario(svc, ev):
        ev.post(Snapshot([view(labels=KILLABLE)], {CID}))
        await until(lambda: health(tmp_path).get("Status") == "healthy", what="healthy")
        execs.down = True
        await until(lambda: execs.not_run >= 3, what="checks not run")
        ev.post(Disconnected("stream ended"))
        await until(lambda: not svc.watches and len(svc.sched) == 0, what="all paused")
        n = len(execs.calls)
        await asyncio.sleep(0.2)                      # ten intervals: nothing scheduled
        assert len(execs.calls) <= n + 1              # at most one already in flight
        execs.down = False
        ev.post(Snapshot([view(labels=KILLABLE, started="2024-01-01T00:00:09Z")], {CID}))
        await until(lambda: health(tmp_path).get("Status") == "healthy"
                    and len(svc.sched) == 1, what="healthy again, one schedule")

    svc, execs, api = run_service(tmp_path, scenario, execs=execs)
    assert api.killed == []
    assert all(e["ExitCode"] == 0 for e in health(tmp_path)["Log"])


def test_a_real_failure_still_counts(tmp_path):
    """The exec ran and exited 1: that is the container's result (and kills, as asked)."""
    execs = FakeExecs({CID: (1, "down")})

    async def scenario(svc, ev):
        ev.post(Snapshot([view(labels=KILLABLE)], {CID}))
        await until(lambda: svc.api.killed, what="a kill")

    svc, execs, api = run_service(tmp_path, scenario, execs=execs)
    assert api.killed == [(CID, "SIGKILL")] and svc.metrics.not_run == 0


# --- the transport: which failures are the daemon's -----------------------------------------
class FakeDockerd:
    """Answers the three exec calls on a unix socket; `routes[(method, first path word)]`
    says how: a (status, body) pair, "close" (hang up without answering), or "stream"
    (101, then `frames`, then hang up), or "hang" (never answer)."""

    def __init__(self, path, routes, frames=b""):
        self.path, self.routes, self.frames = str(path), routes, frames

    async def __aenter__(self):
        self.server = await asyncio.start_unix_server(self.serve, self.path)
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def serve(self, reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        method, url = head.split(" ")[:2]
        length = [int(v) for k, _, v in (ln.partition(":") for ln in head.split("\r\n"))
                  if k.lower() == "content-length"]
        if length:
            await reader.readexactly(length[0])
        kind = url.split("/")[2] if url.count("/") > 2 else ""
        how = self.routes[(method, kind + ("/start" if url.endswith("/start") else ""))]
        if how == "hang":
            await asyncio.sleep(3600)
        if how == "stream":
            writer.write(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\n\r\n" + self.frames)
        elif how != "close":
            status, body = how
            data = json.dumps(body).encode()
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                         + data)
        await writer.drain()
        writer.close()


def frame(data: bytes) -> bytes:
    return b"\x01\x00\x00\x00" + len(data).to_bytes(4, "big") + data


OK_CREATE = {("POST", "containers"): (201, {"Id": "e1"})}
STARTED = {("POST", "exec/start"): "stream"}


def exec_run(tmp_path, routes, timeout=5.0, frames=frame(b"out\n")):
    sock = tmp_path / "d.sock"

    async def main():
        async with FakeDockerd(sock, routes, frames):
            return await AsyncExec(f"unix://{sock}").run(CID, ("true",), timeout)
    return asyncio.run(main())


def test_transport_socket_gone_is_unreachable(tmp_path):
    with pytest.raises(DaemonUnreachable, match="No such file"):
        asyncio.run(AsyncExec(f"unix://{tmp_path}/gone.sock").run(CID, ("true",), 1.0))


@pytest.mark.parametrize("routes", [
    {("POST", "containers"): "close"},                                       # reset at create
    {**OK_CREATE, ("POST", "exec/start"): "close"},                          # at start
    {**OK_CREATE, **STARTED, ("GET", "exec"): "close"},                      # at inspect
    {**OK_CREATE, **STARTED, ("GET", "exec"): (404, {"message": "No such exec instance"})},
], ids=["create", "start", "inspect", "forgotten-exec"])
def test_transport_daemon_failures_are_unreachable(tmp_path, routes):
    with pytest.raises(DaemonUnreachable):
        exec_run(tmp_path, routes)


def test_transport_nonzero_exit_is_a_result(tmp_path):
    code, out = exec_run(tmp_path, {**OK_CREATE, **STARTED,
                                    ("GET", "exec"): (200, {"ExitCode": 3, "Running": False})})
    assert (code, out) == (3, "out\n")


def test_transport_answered_refusal_is_a_result(tmp_path):
    code, out = exec_run(tmp_path, {("POST", "containers"): (409, {"message": "is paused"})})
    assert code == -1 and "is paused" in out


def test_transport_timeout_in_the_container_is_a_result(tmp_path):
    code, out = exec_run(tmp_path, {**OK_CREATE, ("POST", "exec/start"): "hang",
                                    ("GET", "exec"): (200, {"Running": False, "ExitCode": None})},
                         timeout=0.2)
    assert code == -1 and "exceeded timeout" in out
