"""dockguard-runtime with the cis profile on a private dockerd (the plugin audits only): a
capability beyond Docker's default set is refused at start by the runtime alone; a container
without limits still runs (the limit rules stay with the plugin: docs/cis.md)."""
from __future__ import annotations

import pytest

from authz import policy as policies
from authz.rules import all_rules
from hookbin import install

from .conftest import require_dockerd, trusted_tmpdir, write_root_file
from .test_e2e_judge import TwoLines

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def cis_two(guarded_factory):
    require_dockerd()
    base = trusted_tmpdir("dgjc")
    root = base / "root"
    root.mkdir(mode=0o755)
    audit_all = write_root_file(base / "plugin-policy.toml",
                                "[rules]\n" + "".join(f'{r} = "audit"\n' for r in sorted(all_rules())))
    runtime = install.install_runtime(str(base / "bin"), docker_root=str(root))
    policy = write_root_file(base / "runtime-policy.toml", policies.profile_text("cis"))
    g = guarded_factory(policy=str(audit_all), base=base, default_runtime="dockguard",
                        runtimes={"dockguard": install.runtime_config(runtime, str(root), policy=str(policy))})
    yield TwoLines(g, base)


def test_runtime_refuses_a_capability_beyond_the_default_set(cis_two):
    err = cis_two.refused_at_start("--cap-add", "IPC_OWNER", "busybox", "true", rule="cis-capabilities")
    assert "CIS Docker 5.4" in err
    cis_two.runs("--cap-add", "CHOWN", "busybox", "true")


def test_runtime_leaves_limits_to_the_plugin(cis_two):
    assert cis_two.runs("busybox", "echo", "no limits") == "no limits\n"
