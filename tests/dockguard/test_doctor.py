"""doctor's checks and diag's analysis over plain facts (issue 13); e2e in tests/e2e/test_operations.py."""
from __future__ import annotations

import os

from dockguard import diag, doctor


def facts(tmp_path, **kw):
    f = {"root": str(tmp_path), "info": {"ServerVersion": "20.10.24", "DockerRootDir": "/var/lib/docker",
                                         "Plugins": {"Authorization": ["dockguard"]},
                                         "Runtimes": {"dockguard": {"path": "/usr/local/bin/dockguard-runtime"}},
                                         "DefaultRuntime": "dockguard"},
         "url": "unix:///x", "containers": [], "plugin_entries": [], "plugin_dirs": ["/run/docker/plugins"],
         "daemon_json": {}, "cgroup2": True, "kmem": False, "blkio_weight": True, "schedulers": {},
         "lxcfs": True}
    f.update(kw)
    return f


def by_id(checks):
    return {c.id: c for c in checks}


def test_dead_and_restarting_containers(tmp_path):
    f = facts(tmp_path, containers=[{"Id": "a" * 64, "Names": ["/old"], "State": "dead"},
                                    {"Id": "b" * 64, "Names": ["/loop"], "State": "restarting"},
                                    {"Id": "c" * 64, "Names": ["/web"], "State": "running"}])
    c = by_id(doctor.check_containers(f))
    assert c["dead-containers"].status == "warn" and "old" in c["dead-containers"].detail
    assert "docker rm old" in c["dead-containers"].fix
    assert c["restarting"].status == "warn" and "loop" in c["restarting"].detail


def test_plugin_enabled_but_not_answering_fails(tmp_path):
    f = facts(tmp_path, plugin_entries=[{"path": "/run/docker/plugins/dockguard.sock", "name": "dockguard",
                                         "answers": False}])
    assert doctor.check_plugin(f).status == "fail"
    f["plugin_entries"][0]["answers"] = True
    assert doctor.check_plugin(f).status == "ok"
    f["info"]["Plugins"]["Authorization"] = None
    assert doctor.check_plugin(f).status == "fail"


def test_runtime_registered_not_default_warns(tmp_path):
    f = facts(tmp_path)
    f["info"]["DefaultRuntime"] = "runc"
    assert doctor.check_runtime(f).status == "warn"
    del f["info"]["Runtimes"]["dockguard"]
    assert doctor.check_runtime(f).status == "fail"


def test_hooks_dir_must_be_roots_alone(tmp_path):
    hooks = tmp_path / "var/lib/docker/hooks"
    hooks.mkdir(parents=True)
    prog = hooks / "docker-hooks"
    prog.write_text("#!/bin/sh\n")
    os.chmod(hooks, 0o755)
    os.chmod(prog, 0o755)
    assert doctor.check_hooks_dir(facts(tmp_path)).status == "ok"
    os.chmod(prog, 0o775)
    c = doctor.check_hooks_dir(facts(tmp_path))
    assert c.status == "fail" and "docker-hooks" in c.detail and "chmod" in c.fix


def test_kernel_features(tmp_path):
    c = by_id(doctor.check_kernel(facts(tmp_path, schedulers={"sda": "mq-deadline [none]"}, lxcfs=False,
                                        cgroup2=False, kmem=False, blkio_weight=False)))
    assert c["disk-scheduler"].status == "warn" and "bfq" in c["disk-scheduler"].fix
    assert c["lxcfs"].status == "warn" and c["kmem"].status == "warn" and c["blkio-weight"].status == "warn"
    c = by_id(doctor.check_kernel(facts(tmp_path, schedulers={"sda": "mq-deadline [bfq] none"})))
    assert c["disk-scheduler"].status == "ok" and c["lxcfs"].status == "ok"


def test_stale_entries_and_rollout_policy(tmp_path):
    f = facts(tmp_path, plugin_entries=[{"path": "/etc/docker/plugins/x.spec", "name": "x", "addr": "/run/x.sock",
                                         "answers": None}])
    assert doctor.check_stale_plugins(f).status == "fail"
    p = tmp_path / "policy.toml"
    p.write_text('mode = "audit"\n')
    f["policy_path"] = str(p)
    c = doctor.check_policy(f)
    assert c.status == "warn" and "rollout" in c.detail


def test_render_shows_fix_and_counts():
    out = doctor.render([doctor.Check("a", "ok", "fine"), doctor.Check("b", "fail", "broken", "do this")])
    assert "fix: do this" in out and "1 ok, 0 warning(s), 1 failure(s)" in out


def test_diag_analysis_names_paused_children_and_d_state():
    target = {"Id": "p" * 64, "Name": "/parent", "State": {"Pid": 100}, "HostConfig": {"PidMode": ""}}
    child = {"Id": "c" * 64, "Name": "/child", "State": {"Pid": 200, "Paused": True},
             "HostConfig": {"PidMode": "container:parent"}}
    other = {"Id": "o" * 64, "Name": "/other", "State": {"Pid": 300, "Paused": True}, "HostConfig": {}}
    procs = [{"pid": 100, "comm": "sleep", "state": "S", "threads": [{"tid": 100, "state": "S"}], "frozen": False},
             {"pid": 200, "comm": "sleep", "state": "S", "threads": [{"tid": 200, "state": "S"}], "frozen": True},
             {"pid": 201, "comm": "dd", "state": "D", "threads": [{"tid": 201, "state": "D"}], "frozen": False}]
    ns = {100: "pid:[1]", 200: "pid:[1]", 300: "pid:[2]"}
    r = diag.analyse(target, [child, other], "pid:[1]", procs, ns.get)
    assert r["paused_sharing"] == ["child"] and r["sharing"] == ["child"]
    assert r["commands"][0] == "docker unpause child" and "D state" in r["commands"][1]
    assert [s["pid"] for s in r["stuck"]] == [200, 201]
    text = diag.render(r)
    assert "run: docker unpause child" in text and "frozen" in text.lower()
