"""exit-on-unhealthy: exit 137, restart policy does not bring it back, checks resume only
after a new start; engine HEALTHCHECK containers with the exit label; nobody else killed."""
import time

from .conftest import inspect, labels, observe, run, wait_for
from healthd.store import parse_rfc3339

SERVE = ["busybox", "sh", "-c", "touch /tmp/ok; exec sleep 1000"]


def exited(daemon, n):
    st = inspect(daemon, n)["State"]
    return st if not st["Running"] and not st["Restarting"] else None


def test_exit_on_unhealthy_kills_137_and_restart_always_does_not_revive(plain_daemon, sidecar, names):
    n, keep = names("exit"), names("keep")
    interval, retries = 0.3, 2
    common = labels(cmd="test -f /tmp/ok", interval="300ms", retries=str(retries))
    run(plain_daemon, "run", "-d", "--name", n, "--restart", "always", *common,
        "-l", "dockguard.health.exit-on-unhealthy=true", *SERVE)
    run(plain_daemon, "run", "-d", "--name", keep, "--restart", "always", *common, *SERVE)
    sidecar.wait_status(n, "healthy", 5)
    sidecar.wait_status(keep, "healthy", 5)
    t_fail = time.time()
    run(plain_daemon, "exec", n, "rm", "/tmp/ok")
    run(plain_daemon, "exec", keep, "rm", "/tmp/ok")
    st = wait_for(lambda: exited(plain_daemon, n), interval * retries + 3, what=f"{n} to exit")
    assert st["ExitCode"] == 137
    took = parse_rfc3339(st["FinishedAt"]) - t_fail
    print(f"exited {took:.2f}s after the check started failing")
    assert took <= interval * retries + 1.0, f"exited {took:.2f}s after the check started failing"
    assert sidecar.status(n) == "unhealthy"
    assert "killing it" in sidecar.log()
    # --restart always does not bring it back, and the policy itself is left as it was
    restarts = inspect(plain_daemon, n)["RestartCount"]
    time.sleep(2)
    info = inspect(plain_daemon, n)
    assert not info["State"]["Running"] and info["RestartCount"] == restarts
    assert info["HostConfig"]["RestartPolicy"]["Name"] == "always"
    last_end = sidecar.health(n)["Log"][-1]["End"]
    # the container without the label is unhealthy and still running
    assert sidecar.status(keep) == "unhealthy"
    assert inspect(plain_daemon, keep)["State"]["Running"]
    # no checks while it is stopped; they resume when it is started again
    time.sleep(0.7)
    assert sidecar.health(n)["Log"][-1]["End"] == last_end
    run(plain_daemon, "start", n)
    seen = observe(sidecar, n, lambda h: h.get("Status") == "healthy", 5)
    assert ("starting", 0) in seen, seen      # the start event brought it back to starting
    assert inspect(plain_daemon, n)["State"]["Running"]


def test_engine_healthcheck_with_exit_label_is_stopped(plain_daemon, sidecar, names):
    n, keep = names("eng"), names("engkeep")
    engine = ["--health-cmd", "test -f /tmp/ok", "--health-interval", "300ms",
              "--health-retries", "2", "--restart", "always"]
    run(plain_daemon, "run", "-d", "--name", n, *engine,
        "-l", "dockguard.health.exit-on-unhealthy=true", *SERVE)
    run(plain_daemon, "run", "-d", "--name", keep, *engine, *SERVE)
    wait_for(lambda: inspect(plain_daemon, n)["State"]["Health"]["Status"] == "healthy", 5,
             what="engine healthy")
    assert wait_for(lambda: sidecar.status(n) == "healthy", 3, what="sidecar follows engine")
    run(plain_daemon, "exec", n, "rm", "/tmp/ok")
    run(plain_daemon, "exec", keep, "rm", "/tmp/ok")
    st = wait_for(lambda: exited(plain_daemon, n), 6, what=f"{n} to exit")
    assert st["ExitCode"] == 137
    assert st["Health"]["Status"] == "unhealthy"
    time.sleep(1.5)
    assert not inspect(plain_daemon, n)["State"]["Running"]
    # engine container without the label: unhealthy, left alone (sidecar does not watch it)
    keep_st = inspect(plain_daemon, keep)["State"]
    assert keep_st["Running"] and keep_st["Health"]["Status"] == "unhealthy"
    assert sidecar.record(keep) is None


def test_exit_label_without_any_check_is_refused_not_killed(plain_daemon, sidecar, names):
    n = names("nocheck")
    run(plain_daemon, "run", "-d", "--name", n, "-l", "dockguard.health.exit-on-unhealthy=true",
        "busybox", "sleep", "1000")
    wait_for(lambda: "without a check" in sidecar.log(), 5, what="error logged")
    time.sleep(0.5)
    assert inspect(plain_daemon, n)["State"]["Running"]
