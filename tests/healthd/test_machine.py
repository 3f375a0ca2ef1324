"""The guide's check rules as a pure function."""
from healthd.machine import (HEALTHY, STARTING, UNHEALTHY, Health, Result, apply,
                             cap_output, started, turned_unhealthy)

T0 = 1000.0


def run(results, retries=3, start_period=0.0, h=None):
    h = h or started(None)
    seen = []
    for i, code in enumerate(results):
        t = T0 + 1 + i
        h = apply(h, Result(t, t + 0.01, code, f"r{i}"), retries=retries,
                  start_period=start_period, started_at=T0)
        seen.append((h.status, h.failing_streak))
    return h, seen


def test_starting_then_healthy_on_first_success():
    assert started(None) == Health(STARTING, 0, ())
    h, seen = run([0])
    assert seen == [(HEALTHY, 0)]


def test_retries_consecutive_failures_make_unhealthy_then_checks_continue():
    _, seen = run([0, 1, 1, 1, 1, 0], retries=3)
    assert seen == [(HEALTHY, 0), (HEALTHY, 1), (HEALTHY, 2), (UNHEALTHY, 3),
                    (UNHEALTHY, 4), (HEALTHY, 0)]


def test_failures_from_starting_count_without_start_period():
    _, seen = run([1, 1], retries=2)
    assert seen == [(STARTING, 1), (UNHEALTHY, 2)]


def test_start_period_failures_do_not_count():
    # results end at T0+1.01, +2.01, ...; start period 3s covers the first two
    _, seen = run([1, 1, 1, 1], retries=2, start_period=3.0)
    assert seen == [(STARTING, 0), (STARTING, 0), (STARTING, 1), (UNHEALTHY, 2)]


def test_success_during_start_period_ends_it():
    _, seen = run([0, 1, 1], retries=2, start_period=100.0)
    assert seen == [(HEALTHY, 0), (HEALTHY, 1), (UNHEALTHY, 2)]


def test_log_keeps_last_five_and_caps_output():
    h, _ = run([1] * 7)
    assert [r.output for r in h.log] == ["r2", "r3", "r4", "r5", "r6"]
    big = Result(T0, T0, 0, "x" * 10000)
    h = apply(started(None), big, retries=3, start_period=0, started_at=T0)
    assert len(h.log[0].output) == 4096
    assert len(cap_output(b"\xff" * 5000)) <= 4096


def test_restart_goes_back_to_starting_keeping_log():
    h, _ = run([1, 1, 1])
    assert h.status == UNHEALTHY
    h2 = started(h)
    assert (h2.status, h2.failing_streak, h2.log) == (STARTING, 0, h.log)


def test_turned_unhealthy_fires_once():
    a = Health(HEALTHY, 2)
    b = Health(UNHEALTHY, 3)
    assert turned_unhealthy(a, b)
    assert not turned_unhealthy(b, Health(UNHEALTHY, 4))
    assert not turned_unhealthy(a, Health(HEALTHY, 0))
