"""Issue 13 on a private dockerd (20.10 and 26): the policy's exceptions and rollout mode in both
lines of defence. The plugin runs the policy in rollout mode (it refuses nothing, audits all);
dockguard-runtime, the default runtime, runs the same exception in enforce mode: a read-only
bind of /etc/localtime runs (the runtime matches the source as given and pinned: Debian's
/etc/localtime is a symlink into /usr/share/zoneinfo), a writable one, /etc itself and a
symlink elsewhere resolving to /etc/localtime are refused by the runtime alone."""
from __future__ import annotations

import uuid

import pytest

from hookbin import install

from .conftest import require_dockerd, trusted_tmpdir, write_root_file

pytestmark = pytest.mark.docker

EXC = ('[[exceptions]]\nname = "localtime"\nrule = "sensitive-mount"\nbind = "/etc/localtime:ro"\n'
       '[rules]\nfile-bind-mount = "off"\n')


@pytest.fixture(scope="module")
def lines(guarded_factory):
    require_dockerd()
    base = trusted_tmpdir("dgx")
    root = base / "root"
    root.mkdir(mode=0o755)
    plugin_policy = write_root_file(base / "plugin-policy.toml", 'mode = "audit"\n' + EXC)
    runtime_policy = write_root_file(base / "runtime-policy.toml", EXC)
    runtime = install.install_runtime(str(base / "bin"), docker_root=str(root))
    g = guarded_factory(policy=str(plugin_policy), base=base, default_runtime="dockguard",
                        runtimes={"dockguard": install.runtime_config(runtime, str(root),
                                                                      policy=str(runtime_policy))})
    return g, base


def _run(g, *args):
    name = "x" + uuid.uuid4().hex[:8]
    r = g.docker("run", "--name", name, *args, "busybox", "true")
    g.docker("rm", "-f", name)
    return name, r


def test_excepted_bind_runs_in_both_lines(lines):
    g, _ = lines
    name, r = _run(g, "-v", "/etc/localtime:/etc/localtime:ro")
    assert r.returncode == 0, r.stderr
    rec = [x for x in g.audit_lines() if x["container"] == name and x["action"] == "container.create"][-1]
    assert rec["exceptions"] == ["localtime"] and rec["decision"] == "allow"


@pytest.mark.parametrize("args", [["-v", "/etc/localtime:/etc/localtime"], ["-v", "/etc:/x:ro"]])
def test_what_the_exception_does_not_cover_is_refused_by_the_runtime(lines, args):
    g, _ = lines
    name, r = _run(g, *args)
    assert r.returncode != 0 and "authorization denied" not in r.stderr, r.stderr
    assert "dockguard-runtime: refused" in r.stderr and "[sensitive-mount]" in r.stderr, r.stderr
    rec = [x for x in g.audit_lines() if x["container"] == name and x["action"] == "container.create"][-1]
    assert rec["decision"] == "audit" and "sensitive-mount" in rec["rule"]  # rollout: audited


def test_a_symlink_resolving_to_the_excepted_file_is_refused(lines):
    g, base = lines
    link = base / "tz"
    link.symlink_to("/etc/localtime")
    _, r = _run(g, "-v", f"{link}:/etc/localtime:ro")
    assert r.returncode != 0 and "dockguard-runtime: refused" in r.stderr and "[sensitive-mount]" in r.stderr, r.stderr
