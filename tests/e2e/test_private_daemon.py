"""The fixture itself: a private dockerd runs busybox from an imported image."""


def test_private_daemon_runs_busybox(plain_daemon):
    res = plain_daemon.docker("run", "--rm", "busybox", "echo", "hi")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "hi\n"
    info = plain_daemon.docker("info", "--format", "{{.DockerRootDir}}")
    assert info.stdout.strip() == str(plain_daemon.data_root)


def test_containerd_namespace_is_valid_whatever_the_directory_name():
    import re
    from pathlib import Path

    from dockguard.harness.daemon import PrivateDaemon
    for name in ("dga_cf6vnk_", "_x", "a__b", "dg.x-", "UPPER"):
        ns = PrivateDaemon(Path("/tmp") / name).namespace
        assert re.fullmatch(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*", ns), ns
        assert re.fullmatch(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*", ns + "-p")
    assert PrivateDaemon(Path("/tmp/a")).namespace != PrivateDaemon(Path("/tmp/b")).namespace
