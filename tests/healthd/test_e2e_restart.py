"""Restarting the sidecar and restarting dockerd: watched containers go back to starting,
the stored log is kept, no container is lost and no schedule is doubled."""
import signal
import threading
import time

import pytest

from .conftest import Sidecar, inspect, labels, observe, run, wait_for

# each check appends a line: counting lines over a window reveals doubled schedules
COUNTING = "echo x >> /tmp/n; test -f /tmp/ok"
SERVE = ["busybox", "sh", "-c", "touch /tmp/ok; exec nc -ll -p 8080 -e true"]


# what the exec transport wrote when dockerd itself did not answer (issue 9): never a result
DAEMON_DOWN = ("exec failed", "exec start failed", "exec inspect failed", "No such file",
               "Connection refused", "Connection reset", "No such exec")


class LogWatcher(threading.Thread):
    """Polls the state files through a window and keeps every log entry ever stored, so an
    entry later pushed out of the 5-entry log is still seen."""

    def __init__(self, sc, refs) -> None:
        super().__init__(daemon=True)
        self.sc, self.refs, self.seen, self.done = sc, refs, {r: {} for r in refs}, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for r in self.refs:
                for e in self.sc.health(r).get("Log", []):
                    self.seen[r][e["Start"]] = e
            time.sleep(0.02)


def checks_in(daemon, n, window: float) -> int:
    before = int(run(daemon, "exec", n, "sh", "-c", "wc -l < /tmp/n"))
    time.sleep(window)
    return int(run(daemon, "exec", n, "sh", "-c", "wc -l < /tmp/n")) - before


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_sidecar_restart(plain_daemon, tmp_path, names, sig):
    ex, tcp = names("rsx"), names("rst")
    state = tmp_path / "state"
    sc = Sidecar(plain_daemon, state).start()
    try:
        run(plain_daemon, "run", "-d", "--name", ex, *labels(cmd=COUNTING, interval="300ms"), *SERVE)
        run(plain_daemon, "run", "-d", "--name", tcp, *labels(tcp="8080", interval="300ms"), *SERVE)
        sc.wait_status(ex, "healthy", 5)
        sc.wait_status(tcp, "healthy", 5)
        observe(sc, ex, lambda h: len(h.get("Log", [])) >= 3, 5)
        # a second sidecar on the same state dir refuses to run (no duplicate schedules)
        dup = Sidecar(plain_daemon, state)
        dup.log_path = tmp_path / "dup.log"
        import subprocess
        res = subprocess.run(dup.argv(), capture_output=True, text=True, timeout=20)
        assert res.returncode == 1 and "another healthd" in res.stderr
    finally:
        sc.stop(sig)
    old_log = sc.health(ex)["Log"]
    assert sc.status(ex) == "healthy" and len(old_log) >= 3

    sc2 = Sidecar(plain_daemon, state)
    sc2.log_path = tmp_path / "second.log"
    sc2.start()
    try:
        # back to starting with the log kept, then healthy again
        h = sc2.health(ex)
        assert h["Status"] in ("starting", "healthy")
        assert h["Log"][: len(old_log)] == old_log[: len(h["Log"])] or h["Log"][0] in old_log
        seen = observe(sc2, ex, lambda h: h.get("Status") == "healthy", 5)
        assert seen[0] == ("starting", 0), seen
        sc2.wait_status(tcp, "healthy", 5)
        assert sc2.metrics()["watched"] >= 2
        # one schedule per container: ~1 check per (interval + exec time), never twice that
        n = checks_in(plain_daemon, ex, 3.0)
        assert 3 <= n <= 3.0 / 0.3 + 1, f"{n} checks in 3s at a 300ms interval"
    finally:
        sc2.stop()


def test_dockerd_restart(daemon_factory, tmp_path):
    d = daemon_factory()
    sc = Sidecar(d, tmp_path / "state").start()
    try:
        common = ["--stop-timeout", "1"]
        run(d, "run", "-d", "--name", "ex", "--restart", "always", *common,
            *labels(cmd=COUNTING, interval="300ms"), *SERVE)
        run(d, "run", "-d", "--name", "tcp", "--restart", "always", *common,
            *labels(tcp="8080", interval="300ms"), *SERVE)
        run(d, "run", "-d", "--name", "once", *common,
            *labels(tcp="8080", interval="300ms"), *SERVE)
        # healthy, and killed at the first counted failure: a dockerd restart must not do it
        run(d, "run", "-d", "--name", "keep", "--restart", "always", *common,
            *labels(cmd="true", interval="100ms", retries="1", exit_on_unhealthy="true"), *SERVE)
        for n in ("ex", "tcp", "once", "keep"):
            sc.wait_status(n, "healthy", 5)
        old_started = inspect(d, "ex")["State"]["StartedAt"]
        old_log = sc.health("ex")["Log"]
        watcher = LogWatcher(sc, ("ex", "keep"))
        watcher.start()

        d.restart()

        # the sidecar reconnects by itself: the restarted container goes back to starting
        # with its stored log kept, then the rules apply from there
        kept = wait_for(lambda: (h := sc.health("ex")) and h["Status"] == "starting"
                        and h["FailingStreak"] == 0 and h, 30, interval=0.02,
                        what="ex back to starting after the dockerd restart")
        assert old_log[-1] in kept["Log"], "stored log was lost"
        assert inspect(d, "ex")["State"]["StartedAt"] != old_started
        for n in ("ex", "tcp"):
            observe(sc, n, lambda h: h.get("Status") == "healthy" and
                    h["Log"][-1]["Start"] > old_log[-1]["End"], 20)
        assert "lost docker" in sc.log()
        # exec checks that found dockerd gone were not results: none stored, no streak, no kill
        sc.wait_status("keep", "healthy", 20)
        watcher.done.set()
        watcher.join()
        for ref, entries in watcher.seen.items():
            bogus = [e for e in entries.values() if any(w in e["Output"] for w in DAEMON_DOWN)]
            assert not bogus, f"{ref}: daemon-unreachable stored as results: {bogus}"
            assert all(e["ExitCode"] == 0 for e in entries.values()), (ref, entries)
        assert inspect(d, "keep")["State"]["Running"]
        assert "killing" not in sc.log(), sc.log()
        # the container without a restart policy stayed down and is no longer checked
        assert not inspect(d, "once")["State"]["Running"]
        m = wait_for(lambda: sc.metrics().get("watched") == 3 and sc.metrics(), 5,
                     what="exactly the three running containers watched")
        assert m["connected"]
        n = checks_in(d, "ex", 3.0)
        assert 3 <= n <= 3.0 / 0.3 + 1, f"{n} checks in 3s at a 300ms interval"
        assert sc.proc.poll() is None
    finally:
        sc.stop()


def test_corrupt_state_file_is_set_aside_not_trusted(plain_daemon, tmp_path, names):
    n = names("corrupt")
    state = tmp_path / "state"
    sc = Sidecar(plain_daemon, state).start()
    try:
        run(plain_daemon, "run", "-d", "--name", n, *labels(cmd="true", interval="300ms"),
            "busybox", "sleep", "1000")
        sc.wait_status(n, "healthy", 5)
    finally:
        sc.stop()
    cid = inspect(plain_daemon, n)["Id"]
    (state / f"{cid}.json").write_text('{"Id": "' + cid + '", "Health": {"Status": "heal')
    sc2 = Sidecar(plain_daemon, state)
    sc2.log_path = tmp_path / "second.log"
    sc2.start()
    try:
        aside = wait_for(lambda: list(state.glob(f"{cid}.json.corrupt-*")), 5, what="set aside")
        assert "corrupt" in sc2.log() and cid in sc2.log()
        assert aside[0].read_text().endswith('"heal')
        h = sc2.wait_status(n, "healthy", 5)             # a fresh log, not the torn one
        assert all(e["ExitCode"] == 0 for e in h["Log"])
    finally:
        sc2.stop()


def test_unusable_state_dir_fails_clearly(plain_daemon, tmp_path):
    import subprocess
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    sc = Sidecar(plain_daemon, blocker / "state")
    res = subprocess.run(sc.argv(), capture_output=True, text=True, timeout=20)
    assert res.returncode == 1 and "cannot use state dir" in res.stderr
    assert blocker.read_text() == "not a directory"
