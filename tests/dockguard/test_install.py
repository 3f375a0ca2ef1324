"""`dockguard install|uninstall --root STAGE`: every step of README "Install on a host", staged.

Never the machine's own /etc/docker or systemd dirs: everything happens under tmp_path.
"""
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dockguard import install

pytestmark = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                                reason="install writes root-owned hook programs")

OPERATOR = {"log-level": "info", "authorization-plugins": ["other"], "live-restore": True}


def dg(*args: str, exe: str | None = None) -> subprocess.CompletedProcess:
    cmd = [exe] if exe else [sys.executable, "-m", "dockguard.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120)


def tree(root: Path) -> dict:
    """Path -> (sha256, mode, mtime_ns) of every file and symlink under root."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p)] = ("link", os.readlink(p))
        elif p.is_file():
            st = p.stat()
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mode, st.st_mtime_ns)
    return out


def stage(tmp_path: Path, conf: dict | None = OPERATOR) -> Path:
    root = tmp_path / "root"
    (root / "etc/docker").mkdir(parents=True)
    if conf is not None:
        (root / "etc/docker/daemon.json").write_text(json.dumps(conf, indent=4))
    return root


def daemon(root: Path) -> dict:
    return json.loads((root / "etc/docker/daemon.json").read_text())


def backups(root: Path) -> list[Path]:
    return sorted((root / "etc/docker").glob("daemon.json.dockguard-*.bak"))


def test_install_writes_everything_and_merges_daemon_json(tmp_path):
    root = stage(tmp_path)
    res = dg("install", "--root", str(root))
    assert res.returncode == 0, res.stderr
    assert (root / "etc/docker/plugins/dockguard.spec").read_text().strip() == "unix:///run/dockguard/authz.sock"
    exe = str(Path(sys.prefix) / "bin" / "dockguard")
    units = root / "etc/systemd/system"
    authz = (units / "dockguard-authz.service").read_text()
    assert f"ExecStart={exe} authz serve " in authz and "@DOCKGUARD@" not in authz
    assert "--policy /etc/dockguard/policy.toml $DOCKGUARD_AUTHZ_OPTIONS" in authz
    assert "EnvironmentFile=-/etc/dockguard/authz.env" in authz and "ExecReload=" in authz
    assert "Type=notify" in authz and "Requires=dockguard-authz.socket" in authz
    assert "ListenStream=/run/dockguard/authz.sock" in (units / "dockguard-authz.socket").read_text()
    assert f"ExecStart={exe} healthd run " in (units / "dockguard-healthd.service").read_text()
    assert "After=dockguard-authz.socket" in (units / "docker.service.d/dockguard.conf").read_text()
    # enabled offline (systemctl --root), as in an image build
    assert (units / "sockets.target.wants/dockguard-authz.socket").is_symlink()
    for hook in ("network-hook", "lxcfs-hook", "docker-hooks"):
        st = (root / "var/lib/docker/hooks" / hook).stat()
        assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o755
    assert (root / "usr/local/bin/dockguard-runtime").read_text().startswith("#!/bin/sh")
    conf = daemon(root)
    assert conf["log-level"] == "info" and conf["live-restore"] is True        # operator's keys kept
    assert conf["authorization-plugins"] == ["other", "dockguard"]              # theirs kept, ours added
    assert conf["default-runtime"] == "dockguard"
    assert conf["runtimes"]["dockguard"] == {
        "path": "/usr/local/bin/dockguard-runtime",
        "runtimeArgs": ["--hook-spec", "/etc/docker/hookspec.json", "--docker-root", "/var/lib/docker"]}
    assert conf["builder"]["entitlements"] == {"network-host": False, "security-insecure": False}
    assert "kept your authorization plugins ['other']" in res.stdout
    [backup] = backups(root)
    assert json.loads(backup.read_text()) == OPERATOR
    policy = (root / "etc/dockguard/policy.toml").read_text()
    assert 'buildkit-session = "off"' in policy                 # an override, not a copy
    assert 'runtimes = ["dockguard"]' in policy                # no container skips the runtime
    assert "privileged" not in policy
    from authz.policy import load
    assert load(root / "etc/dockguard/policy.toml").level("buildkit-session") == "off"


def test_second_run_changes_nothing(tmp_path):
    root = stage(tmp_path)
    assert dg("install", "--root", str(root)).returncode == 0
    before = tree(root)
    res = dg("install", "--root", str(root))
    assert res.returncode == 0, res.stderr
    assert "nothing to change" in res.stdout
    assert tree(root) == before and len(backups(root)) == 1
    dry = dg("install", "--root", str(root), "--dry-run")
    assert dry.returncode == 0 and "dry run: no changes" in dry.stdout
    hook = root / "var/lib/docker/hooks/network-hook"
    hook.chmod(0o775)
    dry = dg("install", "--root", str(root), "--dry-run")
    assert "mode of /var/lib/docker/hooks/network-hook: 775 -> 755" in dry.stdout, dry.stdout
    assert dg("install", "--root", str(root)).returncode == 0
    assert stat.S_IMODE(hook.stat().st_mode) == 0o755


def test_dry_run_prints_a_diff_and_changes_nothing(tmp_path):
    root = stage(tmp_path)
    before = tree(root)
    res = dg("install", "--root", str(root), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert tree(root) == before
    assert "+++ b/etc/systemd/system/dockguard-authz.service" in res.stdout
    assert '--- a/etc/docker/daemon.json\n+++ b/etc/docker/daemon.json\n' in res.stdout
    assert '+  "default-runtime": "dockguard",' in res.stdout


def test_upgrade_keeps_local_settings_and_policy(tmp_path):
    root = stage(tmp_path)
    assert dg("install", "--root", str(root)).returncode == 0
    env = root / "etc/dockguard/authz.env"
    env.write_text("DOCKGUARD_AUTHZ_OPTIONS=--worker-class gevent --policy /srv/policy.toml\n")
    pol = root / "etc/dockguard/policy.toml"
    pol.write_text('[rules]\nkill = "deny"\n')
    unit = root / "etc/systemd/system/dockguard-authz.service"
    unit.write_text(unit.read_text() + "\n# an old version's unit\n")        # the upgrade rewrites units
    res = dg("install", "--root", str(root))
    assert res.returncode == 0, res.stderr
    assert env.read_text().startswith("DOCKGUARD_AUTHZ_OPTIONS=--worker-class gevent --policy /srv/policy.toml")
    assert pol.read_text() == '[rules]\nkill = "deny"\n'
    assert "an old version" not in unit.read_text() and "$DOCKGUARD_AUTHZ_OPTIONS" in unit.read_text()


def test_conflicting_default_runtime_is_kept_with_a_message(tmp_path):
    root = stage(tmp_path, {"runtimes": {"nvidia": {"path": "/usr/bin/nvidia-container-runtime"}},
                            "default-runtime": "nvidia"})
    res = dg("install", "--root", str(root))
    assert res.returncode == 0, res.stderr
    conf = daemon(root)
    assert conf["default-runtime"] == "nvidia" and "nvidia" in conf["runtimes"]
    assert "dockguard" in conf["runtimes"]
    assert "kept your default-runtime 'nvidia'" in res.stdout
    # the policy then does not demand the dockguard runtime (plain docker run would be refused)
    assert "runtimes" not in (root / "etc/dockguard/policy.toml").read_text()


def test_invalid_daemon_json_is_refused_and_nothing_changes(tmp_path):
    root = stage(tmp_path, None)
    (root / "etc/docker/daemon.json").write_text('{"log-level": "info",}')
    before = tree(root)
    res = dg("install", "--root", str(root))
    assert res.returncode == 1
    assert "daemon.json is not valid JSON" in res.stderr and "Traceback" not in res.stderr
    assert tree(root) == before


def test_merge_refuses_what_would_stop_dockerd():
    with pytest.raises(install.InstallError, match="authorization-plugins"):
        install.merge_daemon({"authorization-plugins": "other"}, None, True)
    with pytest.raises(install.InstallError, match="builder.entitlements"):
        install.merge_daemon({"builder": {"entitlements": []}}, None, True)
    with pytest.raises(install.InstallError, match="not a configured runtime"):
        install.validate_daemon({"default-runtime": "nope"})
    conf, added, notes = install.merge_daemon({"builder": {"entitlements": {"network-host": True}}},
                                              None, True)
    assert conf["builder"]["entitlements"] == {"network-host": True, "security-insecure": False}
    assert not install.entitlements_enforced(conf) and "kept your builder.entitlements" in notes[0]


def test_uninstall_removes_what_install_added_and_keeps_the_rest(tmp_path):
    root = stage(tmp_path)
    before = daemon(root)
    assert dg("install", "--root", str(root)).returncode == 0
    conf = daemon(root)
    conf["debug"] = True                                  # the operator changes daemon.json since
    (root / "etc/docker/daemon.json").write_text(json.dumps(conf))
    (root / "etc/dockguard/authz.env").write_text("DOCKGUARD_AUTHZ_OPTIONS=--workers 1\n")
    dry = dg("uninstall", "--root", str(root), "--dry-run")
    assert dry.returncode == 0 and "--- a/etc/systemd/system/dockguard-authz.service" in dry.stdout
    res = dg("uninstall", "--root", str(root))
    assert res.returncode == 0, res.stderr
    assert daemon(root) == {**before, "debug": True}
    for gone in ("etc/docker/plugins/dockguard.spec", "etc/systemd/system/dockguard-authz.socket",
                 "etc/systemd/system/docker.service.d", "etc/systemd/system/sockets.target.wants/dockguard-authz.socket",
                 "usr/local/bin/dockguard-runtime", "var/lib/docker/hooks/network-hook",
                 "etc/dockguard/policy.toml", "var/lib/dockguard/install.json"):
        assert not (root / gone).exists() and not (root / gone).is_symlink(), gone
    assert (root / "etc/dockguard/authz.env").exists()        # changed by the operator: kept
    assert "kept /etc/dockguard/authz.env" in res.stdout


def test_uninstall_keeps_a_runc_runtime_while_containers_use_it(tmp_path):
    root = stage(tmp_path, {})
    assert dg("install", "--root", str(root)).returncode == 0
    c = root / "var/lib/docker/containers" / ("ab" * 32)
    c.mkdir(parents=True)
    (c / "hostconfig.json").write_text(json.dumps({"Runtime": "dockguard"}))
    res = dg("uninstall", "--root", str(root))
    assert res.returncode == 0, res.stderr
    conf = daemon(root)
    assert conf["runtimes"]["dockguard"]["path"].endswith("/runc") and "default-runtime" not in conf
    assert "authorization-plugins" not in conf and "builder" not in conf
    assert "1 container(s) were created with it (abababababab)" in res.stdout
    (c / "hostconfig.json").unlink()
    c.rmdir()
    res = dg("uninstall", "--root", str(root))
    assert res.returncode == 0, res.stderr
    assert daemon(root) == {}
    assert not (root / "var/lib/dockguard/install.json").exists()


def test_version():
    res = dg("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"dockguard {__import__('dockguard').__version__}"


def test_systemctl_failures_are_reported_never_fatal(tmp_path):
    root = stage(tmp_path)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "systemctl").write_text("#!/bin/sh\necho 'System has not been booted with systemd' >&2\nexit 1\n")
    (fake / "systemctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    res = subprocess.run([sys.executable, "-m", "dockguard.cli", "install", "--root", str(root)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert "not done: systemctl --root=" in res.stderr and "System has not been booted" in res.stderr
    assert (root / "etc/systemd/system/dockguard-authz.socket").exists()
    res = subprocess.run([sys.executable, "-m", "dockguard.cli", "uninstall", "--root", str(root)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0 and "not done: systemctl" in res.stderr, res.stderr


def test_daemon_json_mode_kept_and_a_symlink_refused(tmp_path):
    root = stage(tmp_path)
    (root / "etc/docker/daemon.json").chmod(0o600)
    assert dg("install", "--root", str(root)).returncode == 0
    assert stat.S_IMODE((root / "etc/docker/daemon.json").stat().st_mode) == 0o600
    other = stage(tmp_path / "b", None)
    (other / "etc/docker/real.json").write_text("{}")
    (other / "etc/docker/daemon.json").symlink_to("real.json")
    before = tree(other)
    res = dg("install", "--root", str(other))
    assert res.returncode == 1 and "is a symlink" in res.stderr, res.stderr
    assert tree(other) == before


DOCKERD_26 = Path("/var/cache/dockguard/engines/26/usr/sbin/dockerd")


def test_merged_daemon_json_checked_by_dockerd(tmp_path):
    """dockerd 26 --validate refuses what dockerd would refuse at start; 20.10 lacks the flag."""
    assert DOCKERD_26.exists() or os.environ.get("CI") != "true", "run scripts/get-docker-engine.sh"
    if not DOCKERD_26.exists():
        pytest.skip("no dockerd 26 here")
    root = stage(tmp_path, {"log-level": "nonsense"})
    before = tree(root)
    res = dg("install", "--root", str(root), "--dockerd", str(DOCKERD_26))
    assert res.returncode == 1 and "invalid logging level: nonsense" in res.stderr, res.stderr
    assert tree(root) == before
    root = stage(tmp_path / "b")
    res = dg("install", "--root", str(root), "--dockerd", str(DOCKERD_26))
    assert res.returncode == 0 and "checked by" not in res.stdout, res.stdout + res.stderr
    root = stage(tmp_path / "c")
    res = dg("install", "--root", str(root), "--dockerd", "/usr/sbin/dockerd")
    assert res.returncode == 0 and "predates --validate" in res.stdout, res.stdout + res.stderr


def test_a_dockerd_flag_for_a_key_install_adds_is_refused(tmp_path):
    """dockerd refuses to start with a setting given as a flag and in daemon.json."""
    root = stage(tmp_path, {})
    unit = root / "lib/systemd/system/docker.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/usr/bin/dockerd -H fd:// --default-runtime=runc\n")
    before = tree(root)
    res = dg("install", "--root", str(root))
    assert res.returncode == 1, res.stdout
    assert "starts dockerd with --default-runtime" in res.stderr and "Traceback" not in res.stderr
    assert tree(root) == before
    unit.write_text("[Service]\nExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n")
    assert dg("install", "--root", str(root)).returncode == 0
