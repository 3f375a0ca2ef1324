"""The cis profile on a real dockerd (issue 12): each rule refused through the docker CLI with
its benign twin going through; containers made before the daemon was guarded judged at
start; and, after that workload, docker-bench-security's section-5 queries (its exact
`docker inspect` format strings, run by the same docker CLI) find nothing to warn about on the
running containers, but for the host-dependent checks (docs/cis.md)."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from authz import policy as policies
from dockguard.harness.plugin import PluginProcess
from dockguard.harness.daemon import PrivateDaemon

from tests.conftest import engine_info

DENIED = "authorization denied by plugin"
# A create the cis profile allows (and docker-bench's section 5 does not warn about).
GOOD = ["--memory", "64m", "--cpus", "0.5", "--pids-limit", "64", "--read-only",
        "--security-opt", "no-new-privileges", "--health-cmd", "true", "--health-interval", "2s",
        "--restart", "on-failure:5", "--stop-timeout", "1"]


def without(*flags: str) -> list[str]:
    """GOOD without the given flags (and their values)."""
    out, skip = [], False
    for i, a in enumerate(GOOD):
        if skip:
            skip = False
            continue
        if a in flags:
            skip = a not in ("--read-only",)
            continue
        out.append(a)
    return out


def refused(r: subprocess.CompletedProcess, rule: str) -> str:
    assert r.returncode != 0, f"expected a denial by {rule}, got success: {r.stdout}"
    assert DENIED in r.stderr and f"[{rule}]" in r.stderr and "Safely:" in r.stderr, r.stderr
    return r.stderr


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert DENIED not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    return r


@dataclass
class Cis:
    daemon: PrivateDaemon
    plugin: PluginProcess
    src: Path

    def docker(self, *args):
        return self.daemon.docker(*args)

    def audit(self) -> list[dict]:
        out = []
        for line in self.plugin.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"decision"' in line:
                out.append(json.loads(line))
        return out


@pytest.fixture(scope="module")
def cis(daemon_factory):
    """A daemon that ran unguarded (two containers made then: one within the profile, one
    without any limit), then restarted guarded by the cis profile."""
    d = daemon_factory()
    src = Path(tempfile.mkdtemp(prefix="dgcis", dir="/tmp"))
    policy = d.base / "cis.toml"
    policy.write_text(policies.profile_text("cis"))
    ok(d.docker("create", "--name", "old-bare", "--stop-timeout", "1", "busybox", "sleep", "600"))
    ok(d.docker("create", "--name", "old-good", *GOOD, "busybox", "sleep", "600"))
    name = "dg-test-cis-" + d.base.name
    p = PluginProcess(name, docker_host=d.host, policy=str(policy), log_path=d.base / "plugin.log",
                      plugin_dir=d.plugin_dir)
    p.start()
    try:
        d.authz_plugins = [name]
        d.restart()
        yield Cis(d, p, src)
    finally:
        d.stop()
        p.stop()
        shutil.rmtree(src, ignore_errors=True)


def run_detached(cis: Cis, name: str, *opts: str) -> subprocess.CompletedProcess:
    return cis.docker("run", "-d", "--name", name, *opts, "busybox", "sleep", "600")


def test_a_container_within_the_profile_runs(cis):
    ok(run_detached(cis, "good", *GOOD))


CASES = [
    # rule, refused options, benign twin options (both run detached; the twin stays up)
    ("cis-capabilities", GOOD + ["--cap-add", "IPC_OWNER"], GOOD + ["--cap-drop", "NET_RAW"]),
    ("cis-capabilities", GOOD + ["--cap-add", "LEASE"], GOOD),
    ("cis-devices", GOOD + ["--device", "/dev/fuse"], GOOD),
    ("cis-mount-propagation", GOOD + ["-v", "{src}:/data:rshared"], GOOD + ["-v", "{src}:/data"]),
    ("cis-mount-propagation", GOOD + ["--mount", "type=bind,src={src},dst=/data,bind-propagation=shared"],
     GOOD + ["--mount", "type=bind,src={src},dst=/data,bind-propagation=rprivate"]),
    ("cis-restart-on-failure", without("--restart") + ["--restart", "on-failure:6"],
     without("--restart") + ["--restart", "on-failure:3"]),
    ("cis-restart-on-failure", without("--restart") + ["--restart", "on-failure"],
     without("--restart") + ["--restart", "no"]),
    ("cis-memory", without("--memory"), without("--memory") + ["--memory", "32m"]),
    ("cis-cpu", without("--cpus"), without("--cpus") + ["--cpu-shares", "512"]),
    ("cis-cpu", without("--cpus") + ["--cpu-quota", "50000"], GOOD),
    ("cis-pids-limit", without("--pids-limit"), without("--pids-limit") + ["--pids-limit", "32"]),
    ("cis-read-only-rootfs", without("--read-only"), without("--read-only") + ["--read-only", "--tmpfs", "/tmp"]),
    ("cis-no-new-privileges", without("--security-opt"),
     without("--security-opt") + ["--security-opt", "no-new-privileges:true"]),
    ("cis-healthcheck", without("--health-cmd", "--health-interval") + ["--no-healthcheck"], GOOD),
    ("cis-healthcheck", without("--health-cmd", "--health-interval"),
     without("--health-cmd", "--health-interval") + ["--label", "dockguard.health.cmd=true"]),
]


@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"{c[0]}-{n}" for n, c in enumerate(CASES)])
def test_rule_and_its_benign_twin(cis, i):
    rule, bad, twin = CASES[i]
    fill = lambda opts: [o.format(src=cis.src) for o in opts]  # noqa: E731
    msg = refused(run_detached(cis, f"bad-{i}", *fill(bad)), rule)
    assert "CIS Docker" in msg
    ok(run_detached(cis, f"twin-{i}", *fill(twin)))


def test_restart_always_is_allowed_unless_the_policy_says_so(cis):
    ok(run_detached(cis, "always", *without("--restart"), "--restart", "always"))


def test_exec_as_root_is_audited(cis):
    ok(cis.docker("exec", "-u", "root", "good", "true"))
    ok(cis.docker("exec", "-u", "0:0", "good", "true"))
    ok(cis.docker("exec", "-u", "65534", "good", "true"))
    execs = [r for r in cis.audit() if r.get("action") == "exec.create"]
    flagged = [r for r in execs if "cis-exec-root" in (r.get("rule") or r.get("rules") or [])]
    assert len(flagged) == 2 and all(r["decision"] == "audit" for r in flagged), execs
    assert all("CIS Docker 5.24" in r["msg"] for r in flagged)


def test_update_that_lifts_a_limit_is_refused(cis):
    refused(cis.docker("update", "--pids-limit", "-1", "good"), "cis-pids-limit")
    refused(cis.docker("update", "--restart", "on-failure:10", "good"), "cis-restart-on-failure")
    refused(cis.docker("update", "--cpu-quota", "-1", "good"), "cis-cpu")  # would lift --cpus
    ok(cis.docker("update", "--pids-limit", "48", "--memory", "48m", "--memory-swap", "96m", "good"))


def test_containers_made_before_the_guard_are_judged_at_start(cis):
    msg = refused(cis.docker("start", "old-bare"), "cis-memory")
    for rule in ("cis-cpu", "cis-pids-limit", "cis-read-only-rootfs", "cis-no-new-privileges",
                 "cis-healthcheck"):
        assert f"[{rule}]" in msg, msg
    assert "existing container old-bare" in msg
    # judged as it is: an update adding one limit is refused too; disarming passes
    refused(cis.docker("update", "--memory", "64m", "--memory-swap", "128m", "old-bare"), "cis-memory")
    ok(cis.docker("update", "--restart", "no", "old-bare"))
    ok(cis.docker("start", "old-good"))


def test_host_facts_apparmor_selinux(cis):
    """cis-apparmor and cis-selinux ask nothing where dockerd applies neither (this host: no
    AppArmor module, no SELinux); docker info says which."""
    opts = json.loads(ok(cis.docker("info", "--format", "{{json .SecurityOptions}}")).stdout)
    have_aa = any(o == "name=apparmor" for o in opts)
    have_se = any(o == "name=selinux" for o in opts)
    r = cis.docker("run", "--rm", *without("--restart"), "busybox", "true")
    if have_aa or have_se:
        pytest.fail(f"this host has AppArmor/SELinux ({opts}): extend this test to refuse a container without them")
    ok(r)


# ---- docker-bench-security's section-5 queries, as it runs them ---------------------------

def _inspect(cis: Cis, fmt: str, name: str) -> str:
    return ok(cis.docker("inspect", "--format", fmt, name)).stdout.strip()


def bench_warnings(cis: Cis, name: str) -> dict[str, str]:
    """What docker-bench-security (tests/5_container_runtime.sh, v1.6 numbering) warns about
    for one running container: its format strings, its string comparisons."""
    warn = {}
    v = _inspect(cis, "AppArmorProfile={{ .AppArmorProfile }}", name)
    if v in ("AppArmorProfile=", "AppArmorProfile=[]", "AppArmorProfile=<no value>", "AppArmorProfile=unconfined"):
        warn["5.2"] = v
    v = _inspect(cis, "SecurityOpt={{ .HostConfig.SecurityOpt }}", name)
    if v in ("SecurityOpt=", "SecurityOpt=[]", "SecurityOpt=<no value>"):
        warn["5.3"] = v
    v = _inspect(cis, "CapAdd={{ .HostConfig.CapAdd }}", name)
    if v not in ("CapAdd=", "CapAdd=[]", "CapAdd=<no value>", "CapAdd=<nil>"):
        warn["5.4"] = v
    if _inspect(cis, "{{ .HostConfig.Memory }}", name) == "0":
        warn["5.11"] = "Memory=0"
    if _inspect(cis, "{{ .HostConfig.CpuShares }}", name) == "0" and \
            _inspect(cis, "{{ .HostConfig.NanoCpus }}", name) == "0":
        warn["5.12"] = "CpuShares=0 NanoCpus=0"
    if _inspect(cis, "{{ .HostConfig.ReadonlyRootfs }}", name) == "false":
        warn["5.13"] = "ReadonlyRootfs=false"
    v = _inspect(cis, "{{ .HostConfig.RestartPolicy.MaximumRetryCount }}", name)
    if int(v) > 5:
        warn["5.15"] = v
    v = _inspect(cis, "Devices={{ .HostConfig.Devices }}", name)
    if v not in ("Devices=", "Devices=[]", "Devices=<no value>"):
        warn["5.18"] = v
    v = _inspect(cis, "Propagation={{range $mnt := .Mounts}} {{json $mnt.Propagation}} {{end}}", name)
    if "shared" in v:
        warn["5.20"] = v
    v = _inspect(cis, "SecurityOpt={{.HostConfig.SecurityOpt }}", name)
    if "no-new-privileges" not in v:
        warn["5.26"] = v
    r = cis.docker("inspect", "--format", "{{ .Id }}: Health={{ .State.Health.Status }}", name)
    if r.returncode != 0:
        warn["5.27"] = r.stderr.strip()
    v = _inspect(cis, "{{.HostConfig.PidsLimit }}", name)
    if v in ("0", "<nil>", "-1"):
        warn["5.29"] = v
    return warn


# Checks whose result depends on the host, not on what dockguard lets through (docs/cis.md):
# 5.2 warns for every container where dockerd applies no AppArmor profile (no AppArmor on
# the host). And the profile's deliberate allowances, which the benchmark still reports:
# 5.4 any --cap-add (Docker's default set, or a listed one), 5.18 a listed device,
# 5.27 dockguard's health labels instead of an engine HEALTHCHECK.
HOST_DEPENDENT = {"5.2"}


def test_docker_bench_section_5_finds_nothing_on_the_workload(cis):
    """After the workload above (every refused try, every twin left running), the running
    containers pass docker-bench's section-5 checks that the profile covers."""
    names = ok(cis.docker("ps", "--format", "{{.Names}}")).stdout.split()
    assert "good" in names and "old-good" in names and "old-bare" not in names
    # the twins bench reports by design (see above) are left out, by name
    exempt = {f"twin-{i}": rule for i, (rule, _b, twin) in enumerate(CASES)
              if rule == "cis-healthcheck" and "--label" in twin}
    seen = {}
    for name in names:
        if name in exempt:
            continue
        w = {k: v for k, v in bench_warnings(cis, name).items() if k not in HOST_DEPENDENT}
        if w:
            seen[name] = w
    assert seen == {}, seen
    # and the host-dependent one is as docs/cis.md says for a host without AppArmor
    opts = json.loads(ok(cis.docker("info", "--format", "{{json .SecurityOptions}}")).stdout)
    if "name=apparmor" not in opts:
        assert "5.2" in bench_warnings(cis, "good")
    # the exempt twin is what bench would flag, and only for that
    for name in exempt:
        if name in names:
            assert set(bench_warnings(cis, name)) - HOST_DEPENDENT == {"5.27"}


def test_daemon_wide_no_new_privileges(daemon_factory, tmp_path):
    """dockerd --no-new-privileges: a container without the option is allowed, the daemon
    saying so in `docker info` (26) or on its command line (20.10); =false still refused."""
    d = daemon_factory(extra_args=["--no-new-privileges"])
    policy = d.base / "cis.toml"
    policy.write_text(policies.profile_text("cis"))
    name = "dg-test-cisnnp-" + d.base.name
    p = PluginProcess(name, docker_host=d.host, policy=str(policy), log_path=d.base / "plugin.log",
                      plugin_dir=d.plugin_dir)
    p.start()
    try:
        d.authz_plugins = [name]
        d.restart()
        opts = json.loads(ok(d.docker("info", "--format", "{{json .SecurityOptions}}")).stdout)
        r = d.docker("run", "--rm", *without("--security-opt", "--restart"), "busybox", "true")
        major = int(engine_info()["version"].split(".")[0])
        # dockerd 26 reports it; 20.10 does not (checked): there the plugin reads it from the
        # command line of the dockerd serving its socket, as docker-bench does
        assert ("name=no-new-privileges" in opts) == (major >= 26), (major, opts)
        ok(r)
        refused(d.docker("run", "--rm", *without("--security-opt", "--restart"), "--security-opt",
                         "no-new-privileges=false", "busybox", "true"), "cis-no-new-privileges")
    finally:
        d.stop()
        p.stop()
