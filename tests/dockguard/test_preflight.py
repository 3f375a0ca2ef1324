"""dockguard.preflight over plain data: which containers block an install, the fixes, the
JSON, dockerd's records read from disk when it does not answer, the install gate's choices."""
from __future__ import annotations

import argparse
import io
import json

import pytest

from authz import policy as policies
from dockguard import preflight
from tests.authz.test_existing import BENIGN, VIOLATING, bind, inspect


class FakeDaemon:
    def __init__(self, containers, fail=False):
        self.containers = {c["Id"]: c for c in containers}
        self.updated = []
        self.fail = fail

    def container_ids(self):
        if self.fail:
            raise preflight.LookupFailed("could not look up the container list: refused")
        return list(self.containers)

    def container(self, ref):
        return self.containers.get(ref)

    def volume(self, name):
        return None

    def docker_root(self):
        return "/var/lib/docker"

    def root_paths(self):
        return frozenset({"/var/lib/docker"})

    def socket_paths(self):
        return frozenset({"/var/run/docker.sock"})

    def daemon_dirs(self):
        return frozenset({"/var/run/docker", "/run/containerd"})

    def update_restart_no(self, cid):
        self.updated.append(cid)
        self.containers[cid]["HostConfig"]["RestartPolicy"] = {"Name": "no"}


class V1(preflight.HostFacts):
    def cgroup_v2(self):
        return False


def c(name, restart="no", runtime="runc", running=False, base=None, **kw):
    info = inspect(name, cid=(name + "0" * 64)[:64], **kw) if base is None else json.loads(json.dumps(base))
    info["Name"] = "/" + name
    info["Id"] = (name + "0" * 64)[:64]
    info["HostConfig"]["RestartPolicy"] = {"Name": restart, "MaximumRetryCount": 0}
    info["HostConfig"]["Runtime"] = runtime
    info["State"] = {"Running": running, "Restarting": False}
    return info


def scan(*containers, **kw):
    return {e.name: e for e in preflight.scan(FakeDaemon(containers), policies.load(), host=V1(), **kw)}


def test_only_violating_restart_policy_containers_under_another_runtime_block():
    got = scan(c("always", "always", base=VIOLATING), c("unless", "unless-stopped", base=VIOLATING),
               c("onfail", "on-failure", base=VIOLATING), c("norestart", base=VIOLATING),
               c("guarded", "always", runtime="dockguard", base=VIOLATING),
               c("benign", "always", base=BENIGN))
    assert {n for n, e in got.items() if e.blocking} == {"always", "unless", "onfail"}
    assert "benign" not in got                      # nothing to say about it
    assert not got["norestart"].blocking            # the plugin refuses its start
    assert not got["guarded"].blocking and got["guarded"].violates  # its runtime judges it
    assert "docker update --restart=no always" in got["always"].fix()
    rules = {f.rule for f in got["always"].findings}
    assert {"host-namespace", "sensitive-mount", "dangerous-capability"} <= rules


def test_audit_only_findings_do_not_block(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[rules]\nfile-bind-mount = "audit"\n')
    fb = c("fb", "always", hc={"Binds": ["/srv/f:/f"]}, mounts=[bind("/srv/f", "/f")])
    d = FakeDaemon([fb])
    pol = policies.load(p)

    class Files(V1):
        def is_regular_file(self, path):
            return path == "/srv/f"
    got = preflight.scan(d, pol, host=Files())
    assert len(got) == 1 and not got[0].violates and not got[0].blocking
    assert got[0].fix() == "audited only"


def test_accept_by_name_or_id_prefix():
    got = scan(c("a", "always", base=VIOLATING), c("b", "always", base=VIOLATING),
               accept=["a", ("b" + "0" * 64)[:12]])
    assert all(e.accepted and not e.blocking for e in got.values())
    assert scan(c("a", "always", base=VIOLATING), accept=["a0"])["a"].blocking  # too short an ID


def test_disarm_updates_only_the_blocking_ones():
    d = FakeDaemon([c("a", "always", base=VIOLATING), c("n", base=VIOLATING), c("ok", "always", base=BENIGN)])
    entries = preflight.scan(d, policies.load(), host=V1())
    assert preflight.disarm(d, entries) == []
    assert d.updated == [("a" + "0" * 64)[:64]]
    a = next(e for e in entries if e.name == "a")
    assert a.disarmed and not a.blocking and "turned off" in a.fix()


def test_run_exit_codes_and_json(monkeypatch):
    d = FakeDaemon([c("a", "always", base=VIOLATING)])
    monkeypatch.setattr(preflight, "connect", lambda *a, **k: (d, "fake"))
    out = io.StringIO()
    assert preflight.run(as_json=True, out=out) == 1
    report = json.loads(out.getvalue())
    assert report["blocking"] == 1 and report["containers"][0]["name"] == "a"
    assert report["containers"][0]["findings"][0]["problems"]
    out = io.StringIO()
    assert preflight.run(do_disarm=True, out=out) == 0
    assert "restart policy turned off" in out.getvalue()
    assert preflight.run(out=io.StringIO()) == 0  # disarmed for good


def test_run_cannot_check_is_2(monkeypatch, capsys):
    d = FakeDaemon([], fail=True)
    monkeypatch.setattr(preflight, "connect", lambda *a, **k: (d, "fake"))
    assert preflight.run(out=io.StringIO()) == 2
    assert "cannot check" in capsys.readouterr().err
    assert preflight.run(policy_path="/nonexistent/policy.toml", out=io.StringIO()) == 2


def write_records(root, cid, name, hc, mountpoints, running=False):
    d = root / "containers" / cid
    d.mkdir(parents=True)
    (d / "config.v2.json").write_text(json.dumps({
        "ID": cid, "Name": "/" + name, "State": {"Running": running},
        "Config": {"Image": "busybox", "Cmd": ["true"], "Labels": {}},
        "MountPoints": mountpoints}))
    (d / "hostconfig.json").write_text(json.dumps(hc))


def test_records_daemon_reads_dockerds_files(tmp_path):
    root = tmp_path / "docker"
    hc = dict(inspect("x")["HostConfig"], RestartPolicy={"Name": "always"}, PidMode="host")
    write_records(root, "a" * 64, "pidhost", hc, {})
    write_records(root, "b" * 64, "vol", dict(inspect("x")["HostConfig"], RestartPolicy={"Name": "always"}),
                  {"/v": {"Source": "", "Destination": "/v", "RW": True, "Name": "etcvol",
                          "Driver": "local", "Type": "volume"}})
    (root / "volumes" / "etcvol").mkdir(parents=True)
    (root / "volumes" / "etcvol" / "opts.json").write_text(
        json.dumps({"MountType": "none", "MountOpts": "bind", "MountDevice": "/etc"}))
    write_records(root, "c" * 64, "fine", dict(inspect("x")["HostConfig"], RestartPolicy={"Name": "always"}), {})
    rd = preflight.RecordsDaemon(str(root))
    assert rd.container("pidhost")["Id"] == "a" * 64
    assert rd.container("bbbb")["Name"] == "/vol"
    got = {e.name: e for e in preflight.scan(rd, policies.load(), host=V1())}
    assert got["pidhost"].blocking and "host-namespace" in {f.rule for f in got["pidhost"].findings}
    assert got["vol"].blocking and "sensitive-mount" in {f.rule for f in got["vol"].findings}
    assert "fine" not in got
    with pytest.raises(preflight.LookupFailed):
        rd.update_restart_no("a" * 64)


def test_records_daemon_on_a_fresh_host(tmp_path):
    assert preflight.RecordsDaemon(str(tmp_path / "none")).container_ids() == []


def gate_args(**kw):
    ns = argparse.Namespace(root="/", docker_host=None, docker_root="/var/lib/docker", dry_run=False,
                            accept_container=[], disarm_restart=False)
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def test_install_gate(monkeypatch, capsys):
    d = FakeDaemon([c("a", "always", base=VIOLATING)])
    monkeypatch.setattr(preflight, "connect", lambda *a, **k: (d, "fake"))
    assert preflight.install_gate(gate_args(root="/tmp/stage")) == 0  # staged: not checked
    assert "no daemon's containers checked" in capsys.readouterr().err
    assert preflight.install_gate(gate_args()) == 1
    assert "nothing was installed" in capsys.readouterr().err
    assert preflight.install_gate(gate_args(dry_run=True, disarm_restart=True)) == 0  # reports only
    assert d.updated == []
    assert preflight.install_gate(gate_args(accept_container=["a"])) == 0
    assert preflight.install_gate(gate_args(disarm_restart=True)) == 0
    assert d.updated == [("a" + "0" * 64)[:64]]


def test_install_gate_cannot_check(monkeypatch, capsys):
    def boom(*a, **k):
        raise preflight.LookupFailed("the daemon at x does not answer")
    monkeypatch.setattr(preflight, "connect", boom)
    assert preflight.install_gate(gate_args()) == 2
    assert "could not be checked" in capsys.readouterr().err
