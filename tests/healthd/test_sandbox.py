"""The sandbox contract: start() gives a connected sidecar; walkthrough() shows a container
going unhealthy and being exited with 137 (not revived by --restart always)."""
import signal

from healthd import sandbox


def test_sandbox_start_and_walkthrough(plain_daemon, tmp_path, capsys):
    proc = sandbox.start(plain_daemon, tmp_path / "health")
    steps = []

    def step(title, argv, expect_ok):
        res = plain_daemon.docker(*argv)
        print(f"## {title}\n$ docker {' '.join(argv)}\n{res.stdout}{res.stderr}")
        assert (res.returncode == 0) == expect_ok, res.stderr
        steps.append((title, argv, res.stdout))

    try:
        sandbox.walkthrough(plain_daemon, step)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    out = capsys.readouterr().out
    shown = {t: o for t, _, o in steps}
    ps = next(o for t, o in shown.items() if "137" in t)
    assert "Exited (137)" in ps, out
    insp = next(o for t, o in shown.items() if "still down" in t)
    assert "exit=137 running=false restarts=0 policy=always" in insp, out
    assert "unhealthy" in out and "healthy" in out
    assert "killing it" in sandbox.log_path(tmp_path / "health").read_text()
