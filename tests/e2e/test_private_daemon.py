"""The fixture itself: a private dockerd runs busybox from an imported image."""


def test_private_daemon_runs_busybox(plain_daemon):
    res = plain_daemon.docker("run", "--rm", "busybox", "echo", "hi")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "hi\n"
    info = plain_daemon.docker("info", "--format", "{{.DockerRootDir}}")
    assert info.stdout.strip() == str(plain_daemon.data_root)
