"""The README's first quick-start command: the sandbox comes up, walks through the guide
with every step as expected, stays up for the user, and goes away on `down`."""
import subprocess
import sys

from tests.conftest import require_dockerd
from tests.hookbin.conftest import trusted_tmpdir


def test_sandbox_up_walkthrough_down():
    require_dockerd()
    # Hook-specs must lie where only root can write (not /tmp): a root-owned base.
    base = trusted_tmpdir("dgsb")
    base.rmdir()
    cli = [sys.executable, "-m", "dockguard.cli", "sandbox"]
    try:
        up = subprocess.run(cli + ["up", "--dir", str(base)], capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]
        assert "0 not as expected" in up.stdout
        assert f"export DOCKER_HOST=unix://{base}/docker.sock" in up.stdout
        assert "sandbox down" in up.stdout
        status = subprocess.run(cli + ["status", "--dir", str(base)], capture_output=True, text=True)
        assert status.returncode == 0 and "dockerd  pid" in status.stdout
    finally:
        # under timeout(1), whose command line names the directory too: down stops only the
        # processes the sandbox started (by pid), never one that merely mentions the path
        down = subprocess.run(["timeout", "120", *cli, "down", "--dir", str(base)], capture_output=True,
                              text=True, timeout=150)
    assert down.returncode == 0, (down.returncode, down.stdout, down.stderr)
    assert not base.exists()
    status = subprocess.run(cli + ["status", "--dir", str(base)], capture_output=True, text=True)
    assert status.returncode == 1
