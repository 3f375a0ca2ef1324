"""authz.inflight: lifecycle operations counted between AuthZReq and AuthZRes, with a TTL."""
from __future__ import annotations

from authz.inflight import InFlight


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


A = ("POST", "/containers/a/stop")
B = ("POST", "/containers/b/stop")


def test_limit_and_finish():
    f = InFlight(ttl=60, clock=Clock())
    assert f.try_start(A, 2) and f.try_start(B, 2)
    assert f.count() == 2
    assert not f.try_start(A, 2)
    assert f.count() == 2  # a refused start is not counted
    f.finish(A)
    assert f.count() == 1
    assert f.try_start(A, 2)
    assert f.count() == 2


def test_same_key_counted_twice_and_finished_oldest_first():
    clock = Clock()
    f = InFlight(ttl=60, clock=clock)
    assert f.try_start(A, 10)
    clock.t += 10
    assert f.try_start(A, 10)
    assert f.count() == 2
    f.finish(A)  # the oldest goes
    assert f.count() == 1
    clock.t += 55  # the first would have expired now; the second (t+10) has 5 s left
    assert f.count() == 1
    clock.t += 5
    assert f.count() == 0


def test_finish_of_unknown_or_expired_key_is_harmless():
    clock = Clock()
    f = InFlight(ttl=5, clock=clock)
    f.finish(A)
    assert f.count() == 0
    f.try_start(A, 10)
    clock.t += 6
    assert f.count() == 0
    f.finish(A)  # its response came late: nothing to close, no negative count
    f.finish(A)
    assert f.count() == 0
    assert f.try_start(B, 1)
    assert f.count() == 1


def test_responses_that_never_come_do_not_leak():
    clock = Clock()
    f = InFlight(ttl=300, clock=clock)
    for i in range(3):
        assert f.try_start(("POST", f"/containers/{i}/start"), 3)
    assert not f.try_start(A, 3)
    clock.t += 299.9
    assert not f.try_start(A, 3)
    clock.t += 0.1  # exactly ttl: expired
    assert f.count() == 0
    assert f.try_start(A, 3)
    assert f.count() == 1
    assert not f._by_key.get(("POST", "/containers/0/start"))


def test_finished_entries_are_skipped_at_expiry():
    clock = Clock()
    f = InFlight(ttl=10, clock=clock)
    f.try_start(A, 10)
    f.finish(A)
    clock.t += 1
    f.try_start(A, 10)  # same key again, later start
    clock.t += 9.5  # the first entry's time is past the ttl; the second is not
    assert f.count() == 1
    clock.t += 1
    assert f.count() == 0


def test_many_interleaved():
    clock = Clock()
    f = InFlight(ttl=100, clock=clock)
    for i in range(1000):
        assert f.try_start(A if i % 2 else B, 1000)
        clock.t += 0.01
    assert not f.try_start(A, 1000)
    for _ in range(500):
        f.finish(A)
    assert f.count() == 500
    clock.t += 100
    assert f.count() == 0
    assert f._by_key == {}


def test_same_key_same_instant():
    clock = Clock()
    f = InFlight(ttl=10, clock=clock)
    assert f.try_start(A, 10) and f.try_start(A, 10)
    f.finish(A)
    assert f.try_start(A, 10)
    assert f.count() == 2
    clock.t += 10
    assert f.count() == 0
    assert f._by_key == {}
