"""One heap of due times; one live schedule per container."""
from healthd.scheduler import Scheduler


def test_pops_in_due_order():
    s = Scheduler()
    s.schedule("b", 2.0)
    s.schedule("a", 1.0)
    s.schedule("c", 3.0)
    assert s.next_due() == 1.0
    assert s.pop_due(2.5) == [("a", 1.0), ("b", 2.0)]
    assert s.pop_due(2.5) == []
    assert s.next_due() == 3.0 and len(s) == 1


def test_reschedule_replaces_never_duplicates():
    s = Scheduler()
    for due in (5.0, 1.0, 3.0):
        s.schedule("x", due)
    assert len(s) == 1 and s.next_due() == 3.0
    assert s.pop_due(10.0) == [("x", 3.0)]
    assert s.pop_due(10.0) == [] and s.next_due() is None


def test_cancel():
    s = Scheduler()
    s.schedule("x", 1.0)
    s.schedule("y", 2.0)
    s.cancel("x")
    s.cancel("nope")
    assert "x" not in s and "y" in s
    assert s.pop_due(5.0) == [("y", 2.0)]


def test_heap_stays_small_under_churn():
    s = Scheduler()
    for i in range(10000):
        s.schedule(i % 10, float(i))
    assert len(s) == 10 and len(s._heap) <= 4 * 10 + 64 + 1
    assert [k for k, _ in s.pop_due(1e9)] == list(range(10))
