"""healthd SIGKILLed mid-write, again and again (issue 9): every state file it leaves is
whole (its own container's JSON, readable by the next sidecar, never set aside as corrupt),
and the next sidecar carries on from it."""
from __future__ import annotations

import json
import random
import signal
import time

import pytest

from .conftest import Sidecar, inspect, labels, run, wait_for

pytestmark = pytest.mark.docker


def test_killed_mid_write_leaves_whole_state(plain_daemon, tmp_path, names):
    state = tmp_path / "state"
    ns = [names("crash") for _ in range(4)]
    for n in ns:   # fast checks whose results change: a write on nearly every check
        run(plain_daemon, "run", "-d", "--name", n,
            *labels(cmd="test $(( $(date +%s) % 2 )) = 0", interval="300ms", retries="100"),
            "busybox", "sleep", "1000")
    ids = {inspect(plain_daemon, n)["Id"] for n in ns}
    rnd = random.Random(9)
    kills = 0
    for i in range(8):
        sc = Sidecar(plain_daemon, state)
        sc.log_path = tmp_path / f"sidecar{i}.log"
        sc.start()
        time.sleep(rnd.uniform(0.5, 2.0))
        sc.stop(signal.SIGKILL)
        kills += 1
        for cid in ids:
            path = state / f"{cid}.json"
            if path.exists():
                rec = json.loads(path.read_bytes())          # whole JSON, this container's
                assert rec["Id"] == cid and isinstance(rec["Health"]["Log"], list)
        assert "corrupt" not in sc.log(), sc.log()
    assert not list(state.glob("*.corrupt-*"))
    # the last sidecar picks up the stored logs and keeps checking
    sc = Sidecar(plain_daemon, state)
    sc.log_path = tmp_path / "last.log"
    sc.start()
    try:
        for n in ns:
            wait_for(lambda: len(sc.health(n).get("Log", [])) >= 2, 30, what=f"{n} checked again")
        assert "corrupt" not in sc.log()
    finally:
        sc.stop()
    print(f"\nhealthd SIGKILLed {kills} times while writing: every state file whole, none set aside")
