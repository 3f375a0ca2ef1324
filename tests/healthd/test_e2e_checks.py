"""The sidecar's own checks on a real dockerd: exec, TCP and HTTP each go
starting -> healthy -> unhealthy -> healthy as the test flips the condition."""
import time

from .conftest import inspect, labels, observe, run

FAST = dict(interval="300ms", retries="2")


def test_exec_check_cycle_with_start_period_and_retries(plain_daemon, sidecar, names):
    n = names("exec")
    t0 = time.monotonic()
    run(plain_daemon, "run", "-d", "--name", n,
        *labels(cmd="test -f /tmp/ok", start_period="2s", **FAST), "busybox", "sleep", "1000")
    assert sidecar.wait_status(n, "starting", 5)["FailingStreak"] == 0
    # failures inside the 2s start period do not count: still starting, streak 0
    seen = observe(sidecar, n, lambda h: len(h.get("Log", [])) >= 3, 5)
    assert time.monotonic() - t0 < 2.0, "test too slow to observe the start period"
    assert seen == [("starting", 0)], seen
    assert all(e["ExitCode"] == 1 for e in sidecar.health(n)["Log"])
    # a success during the start period makes it healthy
    run(plain_daemon, "exec", n, "touch", "/tmp/ok")
    sidecar.wait_status(n, "healthy", 3)
    # retries=2: the first failure keeps it healthy (streak 1), the second makes it unhealthy
    run(plain_daemon, "exec", n, "rm", "/tmp/ok")
    seen = observe(sidecar, n, lambda h: h.get("Status") == "unhealthy", 5)
    assert seen[-2:] == [("healthy", 1), ("unhealthy", 2)], seen
    # checks continue while unhealthy, the container is not touched (no exit label)
    seen = observe(sidecar, n, lambda h: h.get("FailingStreak", 0) >= 4, 5)
    assert inspect(plain_daemon, n)["State"]["Running"]
    # one success makes it healthy again
    run(plain_daemon, "exec", n, "touch", "/tmp/ok")
    h = sidecar.wait_status(n, "healthy", 3)
    assert h["FailingStreak"] == 0 and h["Log"][-1]["ExitCode"] == 0
    assert len(h["Log"]) == 5
    assert inspect(plain_daemon, n)["State"]["Running"]


def test_exec_output_is_recorded_and_capped(plain_daemon, sidecar, names):
    n = names("out")
    run(plain_daemon, "run", "-d", "--name", n,
        *labels(cmd="echo hello; head -c 10000 /dev/zero | tr '\\0' x; exit 3", **FAST),
        "busybox", "sleep", "1000")
    h = observe(sidecar, n, lambda h: h.get("Log"), 5) and sidecar.health(n)
    e = h["Log"][0]
    assert e["ExitCode"] == 3
    assert e["Output"].startswith("hello\nxxx") and len(e["Output"].encode()) == 4096
    assert e["Start"] <= e["End"]


def test_timed_out_exec_is_killed_and_counts_as_failure(plain_daemon, tmp_path, names):
    from .conftest import Sidecar
    sc = Sidecar(plain_daemon, tmp_path / "st").start()
    n = names("slow")
    try:
        run(plain_daemon, "run", "-d", "--name", n,
            *labels(cmd="sleep 31", timeout="400ms", interval="200ms", retries="1"),
            "busybox", "sleep", "1000")
        h = sc.wait_status(n, "unhealthy", 8)
        assert h["Log"][0]["ExitCode"] == -1
        assert "exceeded timeout" in h["Log"][0]["Output"]
        observe(sc, n, lambda h: len(h.get("Log", [])) >= 3, 8)
        # at most the check in flight right now is running; the timed-out ones were killed
        top = run(plain_daemon, "top", n)
        assert top.count("sleep 31") <= 1, top
    finally:
        sc.stop()
    time.sleep(0.3)
    top = run(plain_daemon, "top", n)
    assert "sleep 31" not in top, f"check process left running after healthd stopped:\n{top}"


def test_tcp_probe_cycle_through_the_container_netns(plain_daemon, sidecar, names):
    n = names("tcp")
    # --bridge=none: the container has only loopback; the probe reaches it via its netns
    run(plain_daemon, "run", "-d", "--name", n, *labels(tcp="8080", start_period="500ms", **FAST),
        "busybox", "sleep", "1000")
    assert sidecar.wait_status(n, "starting", 5)
    listen = ("exec", "-d", n, "nc", "-ll", "-p", "8080", "-e", "true")
    run(plain_daemon, *listen)
    h = sidecar.wait_status(n, "healthy", 3)
    assert h["Log"][-1]["ExitCode"] == 0
    run(plain_daemon, "exec", n, "killall", "nc")
    seen = observe(sidecar, n, lambda h: h.get("Status") == "unhealthy", 5)
    assert seen[-2:] == [("healthy", 1), ("unhealthy", 2)], seen
    assert "Connection refused" in sidecar.health(n)["Log"][-1]["Output"]
    run(plain_daemon, *listen)
    sidecar.wait_status(n, "healthy", 3)
    assert inspect(plain_daemon, n)["State"]["Running"]


def test_http_probe_cycle(plain_daemon, sidecar, names):
    n = names("http")
    run(plain_daemon, "run", "-d", "--name", n, *labels(http="8081/ok.html", **FAST),
        "busybox", "sh", "-c", "mkdir -p /www && exec httpd -f -p 8081 -h /www")
    h = sidecar.wait_status(n, "unhealthy", 5)       # 404 from the start: no start period
    assert "404" in h["Log"][-1]["Output"]
    run(plain_daemon, "exec", n, "touch", "/www/ok.html")
    h = sidecar.wait_status(n, "healthy", 3)
    assert h["Log"][-1]["Output"].startswith("HTTP/1.") and " 200" in h["Log"][-1]["Output"]
    run(plain_daemon, "exec", n, "rm", "/www/ok.html")
    seen = observe(sidecar, n, lambda h: h.get("Status") == "unhealthy", 5)
    assert seen[-2:] == [("healthy", 1), ("unhealthy", 2)], seen
    run(plain_daemon, "exec", n, "touch", "/www/ok.html")
    sidecar.wait_status(n, "healthy", 3)


def test_http_probe_with_start_period_then_server_down(plain_daemon, sidecar, names):
    n = names("http2")
    run(plain_daemon, "run", "-d", "--name", n,
        *labels(http="8082", start_period="10s", interval="250ms", retries="3"),
        "busybox", "sleep", "1000")
    seen = observe(sidecar, n, lambda h: len(h.get("Log", [])) >= 3, 5)
    assert seen == [("starting", 0)], seen   # refused, but inside the start period
    run(plain_daemon, "exec", "-d", n, "sh", "-c",
        "mkdir -p /w && echo hi > /w/index.html && exec httpd -f -p 8082 -h /w")
    sidecar.wait_status(n, "healthy", 3)


def test_bad_labels_are_logged_and_not_watched(plain_daemon, sidecar, names):
    from healthd.config import check_labels
    n = names("bad")
    bad = {"dockguard.health.cmd": "true", "dockguard.health.interval": "-1s"}
    run(plain_daemon, "run", "-d", "--name", n, "-l", "dockguard.health.cmd=true",
        "-l", "dockguard.health.interval=-1s", "busybox", "sleep", "1000")
    rec = None

    def logged():
        nonlocal rec
        rec = sidecar.record(n)
        return rec and "not watched" in sidecar.log()
    from .conftest import wait_for
    wait_for(logged, 5, what="the error in the log")
    assert rec["Watched"] is False and rec["Problems"] == check_labels(bad)
    assert "dockguard.health.interval='-1s': must not be negative" in sidecar.log()
    time.sleep(0.8)
    assert sidecar.health(n)["Log"] == []     # never checked
    assert inspect(plain_daemon, n)["State"]["Running"]


def test_status_cli(plain_daemon, sidecar, names):
    import json
    import subprocess
    import sys
    n = names("cli")
    run(plain_daemon, "run", "-d", "--name", n, *labels(cmd="true", **FAST), "busybox", "sleep", "1000")
    sidecar.wait_status(n, "healthy", 5)
    base = [sys.executable, "-m", "dockguard.cli", "healthd", "status", "--state-dir",
            str(sidecar.state_dir)]
    out = subprocess.run(base + [n, "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    h = json.loads(out.stdout)
    assert set(h) == {"Status", "FailingStreak", "Log"} and h["Status"] == "healthy"
    assert set(h["Log"][0]) == {"Start", "End", "ExitCode", "Output"}
    cid = inspect(plain_daemon, n)["Id"]
    out = subprocess.run(base + [cid[:10]], capture_output=True, text=True)
    assert out.returncode == 0 and f"{n} ({cid[:12]}): healthy" in out.stdout
    out = subprocess.run(base, capture_output=True, text=True)
    assert n in out.stdout and "healthy" in out.stdout
    out = subprocess.run(base + ["no-such-container"], capture_output=True, text=True)
    assert out.returncode == 1 and "no health state" in out.stderr


def test_default_log_flush_coalesces_log_only_writes(plain_daemon, tmp_path, names):
    """Status and streak changes are written at once; a new log entry alone at most every
    5 s (the default), and whatever is pending is written on shutdown."""
    from .conftest import Sidecar, wait_for
    sc = Sidecar(plain_daemon, tmp_path / "st", log_flush="5").start()
    n = names("flush")
    try:
        run(plain_daemon, "run", "-d", "--name", n, *labels(cmd="true", interval="200ms"),
            "busybox", "sleep", "1000")
        h = sc.wait_status(n, "healthy", 5)         # a status change: written at once
        assert len(h["Log"]) == 1
        time.sleep(1.5)                              # several more successes, not yet written
        assert len(sc.health(n)["Log"]) == 1
        wait_for(lambda: len(sc.health(n)["Log"]) >= 4, 6, what="the coalesced write")
        time.sleep(0.5)
    finally:
        sc.stop()
    last = sc.health(n)["Log"][-1]["End"]
    assert sc.status(n) == "healthy"
    # pending entries were flushed on SIGTERM: the last one is recent
    from healthd.store import parse_rfc3339
    assert time.time() - parse_rfc3339(last) < 1.0


def test_rename_and_destroy_follow_the_container(plain_daemon, sidecar, names):
    from .conftest import wait_for
    n, n2 = names("ren"), names("ren2")
    run(plain_daemon, "run", "-d", "--name", n, *labels(tcp="9", **FAST), "busybox", "sleep", "1000")
    cid = inspect(plain_daemon, n)["Id"]
    sidecar.wait_status(n, "starting", 5)
    run(plain_daemon, "rename", n, n2)
    wait_for(lambda: (sidecar.record(n2) or {}).get("Id") == cid, 5, what="renamed in state")
    sidecar.wait_status(n2, "unhealthy", 5)          # nothing listens on port 9
    assert sidecar.metrics() and (sidecar.state_dir / f"{cid}.json").exists()
    run(plain_daemon, "rm", "-f", n2)
    wait_for(lambda: not (sidecar.state_dir / f"{cid}.json").exists(), 5,
             what="state dropped when the container is destroyed")


def test_containers_check_overrides_an_image_check_label(plain_daemon, sidecar, names):
    """The guide: one health configuration in effect; the create-time one wins."""
    base, n = names("base"), names("ovr")
    tag = f"busybox:{base}"
    run(plain_daemon, "create", "--name", base, "busybox", "true")
    run(plain_daemon, "commit", "--change", "LABEL dockguard.health.cmd=false", base, tag)
    try:
        run(plain_daemon, "run", "-d", "--name", n, *labels(tcp="8080", **FAST), tag,
            "nc", "-ll", "-p", "8080", "-e", "true")
        h = sidecar.wait_status(n, "healthy", 5)
        assert sidecar.record(n)["Check"]["Kind"] == "tcp"
        assert h["Log"][-1]["ExitCode"] == 0
    finally:
        plain_daemon.docker("rm", "-f", n)
        plain_daemon.docker("rmi", tag)
