"""`dockguard sandbox up --profile cis`: the sandbox's policy selects the cis profile and its
walkthrough (plain container refused, one within the profile runs, ...) goes as expected."""
import subprocess
import sys

from tests.conftest import require_dockerd
from tests.hookbin.conftest import trusted_tmpdir


def test_sandbox_up_with_the_cis_profile():
    require_dockerd()
    base = trusted_tmpdir("dgcsb")
    base.rmdir()
    cli = [sys.executable, "-m", "dockguard.cli", "sandbox"]
    try:
        up = subprocess.run(cli + ["up", "--dir", str(base), "--profile", "cis"], capture_output=True,
                            text=True, timeout=300)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]
        assert "the cis profile" in up.stdout and "0 not as expected" in up.stdout
        assert (base / "policy.toml").read_text().startswith('profile = "cis"\n')
        assert "[cis-memory]" in up.stdout and "[cis-pids-limit]" in up.stdout
    finally:
        down = subprocess.run(["timeout", "120", *cli, "down", "--dir", str(base)], capture_output=True,
                              text=True, timeout=150)
    assert down.returncode == 0, (down.returncode, down.stdout, down.stderr)
    assert not base.exists()
