"""The guide's "检查规则" as pure functions: (health, result) -> health. No I/O, no clocks.

Mirrors moby's handleProbeResult so `healthd status` reads like `docker inspect`'s
State.Health: failures during start-period (while still `starting`) don't count; a success
makes the container healthy and resets the streak; `retries` consecutive counted failures
make it unhealthy; the last 5 results are kept, output capped at 4 KiB.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
MAX_LOG = 5
MAX_OUTPUT = 4096
EXIT_TIMEOUT = -1   # moby records a timed-out probe with exit code -1


class DaemonUnreachable(Exception):
    """A check that could not be run because dockerd did not answer (socket gone, refused,
    reset, no reply, or it lost the exec in a restart). It says nothing about the container:
    it is never a Result, so it never enters the log, the streak or the status."""


@dataclass(frozen=True)
class Result:
    """One finished check. start/end are wall-clock epoch seconds."""

    start: float
    end: float
    exit_code: int
    output: str = ""


@dataclass(frozen=True)
class Health:
    status: str = STARTING
    failing_streak: int = 0
    log: tuple[Result, ...] = ()


def cap_output(data: bytes | str) -> str:
    """At most 4 KiB of output, as the engine keeps it."""
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    return data[:MAX_OUTPUT].decode("utf-8", "replace")


def started(prev: Health | None) -> Health:
    """A (re)start, or the sidecar/dockerd coming back: `starting`, streak 0, log kept."""
    return Health(STARTING, 0, prev.log if prev else ())


def apply(h: Health, r: Result, *, retries: int, start_period: float,
          started_at: float) -> Health:
    """The state after result `r`. `started_at`: epoch the start-period counts from."""
    log = (h.log + (replace(r, output=cap_output(r.output)),))[-MAX_LOG:]
    if r.exit_code == 0:
        return Health(HEALTHY, 0, log)
    in_start_period = (h.status == STARTING and start_period > 0
                       and r.end - started_at < start_period)
    if in_start_period:
        return Health(h.status, h.failing_streak, log)
    streak = h.failing_streak + 1
    status = UNHEALTHY if streak >= retries else h.status
    return Health(status, streak, log)


def turned_unhealthy(before: Health, after: Health) -> bool:
    """The moment exit-on-unhealthy acts on: a transition into `unhealthy`, not every failure."""
    return before.status != UNHEALTHY and after.status == UNHEALTHY
