"""BuildKit's API (/grpc) and `docker buildx build --network host` (issue 7, hole 3).

buildx talks to dockerd's BuildKit over a hijacked /grpc stream the plugin cannot read. Two
real setups, on whatever engine runs the tests (buildx from Debian 13's docker.io 26 tree,
scripts/get-docker-engine.sh; it drives 20.10's BuildKit too):
- default policy, daemon without builder entitlements: /grpc is refused (buildkit-session);
- what `dockguard install` sets up: daemon.json builder.entitlements network-host and
  security-insecure false, policy buildkit-session = "off": a normal build succeeds,
  `--network host` is refused by dockerd itself.
"""
import json
from pathlib import Path

import pytest

from dockguard.harness.plugin import PluginProcess
from dockguard.harness.daemon import PrivateDaemon
from dockguard.install import ENTITLEMENTS, policy_override
from tests.conftest import IN_CI, require_dockerd, short_tmpdir

pytestmark = pytest.mark.docker

BUILDX = Path("/var/cache/dockguard/engines/26/usr/libexec/docker/cli-plugins/docker-buildx")


class BuilderDaemon(PrivateDaemon):
    """A private dockerd whose daemon.json carries builder entitlements (or not)."""

    entitlements: dict | None = None

    def write_config(self) -> None:
        super().write_config()
        if self.entitlements is not None:
            path = self.base / "daemon.json"
            conf = json.loads(path.read_text())
            conf["builder"] = {"entitlements": self.entitlements}
            path.write_text(json.dumps(conf))

    def link_cli_plugins(self) -> None:
        d = self.base / "client" / "cli-plugins"
        d.mkdir(parents=True, exist_ok=True)
        link = d / "docker-buildx"
        if not link.is_symlink():
            link.symlink_to(BUILDX)


@pytest.fixture
def builder():
    require_dockerd()
    if not BUILDX.exists():
        msg = f"{BUILDX} missing: run scripts/get-docker-engine.sh"
        pytest.fail(msg) if IN_CI else pytest.skip(msg)
    made = []

    def make(entitlements: dict | None, policy_text: str | None):
        base = short_tmpdir("dgb")
        policy = None
        if policy_text is not None:
            policy = base / "policy.toml"
            policy.write_text(policy_text)
        name = "dg-test-" + base.name
        d = BuilderDaemon(base, authz_plugins=[name])
        d.entitlements = entitlements
        p = PluginProcess(name, docker_host=d.host, policy=str(policy) if policy else None,
                          log_path=base / "plugin.log", plugin_dir=d.plugin_dir)
        p.start()
        made.append((d, p))
        d.start()
        d.import_busybox()
        ctx = base / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM busybox:latest\nCOPY hello /hello\n")
        (ctx / "hello").write_text("hi\n")
        return d, ctx

    yield make
    for d, p in reversed(made):
        d.remove()
        p.stop()


def buildx(d: PrivateDaemon, ctx: Path, *extra: str):
    return d.docker("buildx", "build", "--progress", "plain", *extra, "-t", "out:1", str(ctx),
                    timeout=300)


def grpc_decisions(d: PrivateDaemon) -> list[tuple[str, str]]:
    out = []
    for line in (d.base / "plugin.log").read_text().splitlines():
        if line.startswith("{") and '"action": "grpc"' in line:
            rec = json.loads(line)
            out.append((rec["decision"], ",".join(rec["rule"])))
    return out


def test_grpc_refused_without_daemon_entitlements(builder):
    """buildx's docker driver is refused at /grpc; buildx then falls back to its
    docker-container driver (a privileged BuildKit container, refused too: nothing builds)."""
    d, ctx = builder(None, None)
    for extra in (("--network", "host"), ()):
        res = buildx(d, ctx, *extra)
        assert res.returncode != 0, res.stderr
    decisions = grpc_decisions(d)
    assert decisions and set(decisions) == {("deny", "buildkit-session")}, decisions
    assert d.docker("image", "inspect", "out:1").returncode != 0


def test_installed_setup_builds_and_dockerd_refuses_network_host(builder):
    d, ctx = builder(dict(ENTITLEMENTS), policy_override(buildkit_enforced=True, runtime=False))
    res = buildx(d, ctx)
    assert res.returncode == 0, res.stderr[-3000:] + d.log_tail()
    assert d.docker("image", "inspect", "out:1").returncode == 0
    res = buildx(d, ctx, "--network", "host")
    assert res.returncode != 0
    assert "network.host is not allowed" in res.stderr, res.stderr[-3000:]
    res = buildx(d, ctx, "--allow", "security.insecure")
    assert res.returncode != 0
    assert "security.insecure is not allowed" in res.stderr, res.stderr[-3000:]
