"""Every rule of the default policy against a real dockerd, through the real docker CLI
(or raw API calls where the CLI itself refuses to send the request): the denial with its
rule id, reason and safe alternative, and a benign twin that goes through."""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

from .rawapi import create as raw_create, raw

DENIED = "authorization denied by plugin"


def denied(res, rule):
    assert res.returncode != 0, f"expected a denial by {rule}, got success: {res.stdout}"
    assert DENIED in res.stderr, res.stderr
    assert f"[{rule}]" in res.stderr, res.stderr
    assert "Safely:" in res.stderr, res.stderr


def allowed(res):
    assert DENIED not in res.stderr, res.stderr
    assert res.returncode == 0, res.stderr


def uniq(prefix="c"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}x"


@pytest.fixture(scope="module")
def running(guarded):
    """A long-running container to exec into, update, share namespaces with."""
    name = uniq("run")
    r = guarded.docker("run", "-d", "--name", name, "busybox", "sleep", "600")
    assert r.returncode == 0, r.stderr
    return name


@pytest.fixture(scope="module")
def safe_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("dgsafe")
    return str(d)


def test_plain_run_works(guarded):
    r = guarded.docker("run", "--rm", "busybox", "echo", "hi")
    allowed(r)
    assert r.stdout == "hi\n"


CREATE_CASES = [
    # (rule, denied args, benign twin args)
    ("privileged", ["--privileged"], []),
    ("host-namespace", ["--pid", "host"], []),
    ("host-namespace", ["--ipc", "host"], ["--ipc", "private"]),
    ("host-namespace", ["--net", "host"], ["--net", "none"]),
    ("host-namespace", ["--uts", "host"], []),
    ("host-namespace", ["--userns", "host"], []),
    ("host-namespace", ["--cgroupns", "host"], ["--cgroupns", "private"]),
    ("dangerous-capability", ["--cap-add", "SYS_ADMIN"], ["--cap-add", "AUDIT_WRITE"]),
    ("dangerous-capability", ["--cap-add", "cap_net_admin"], ["--cap-add", "cap_chown"]),
    ("dangerous-capability", ["--cap-add", "ALL"], ["--cap-drop", "ALL"]),
    ("dangerous-capability", ["--cap-add", "Sys_Module"], ["--cap-add", "NET_BIND_SERVICE"]),
    ("seccomp-unconfined", ["--security-opt", "seccomp=unconfined"], ["--security-opt", "no-new-privileges"]),
    ("seccomp-unconfined", ["--security-opt", "seccomp:unconfined"], []),
    ("apparmor-unconfined", ["--security-opt", "apparmor=unconfined"], []),
    ("selinux-disabled", ["--security-opt", "label=disable"], ["--security-opt", "label=level:s0"]),
    ("selinux-disabled", ["--security-opt", "label:disable"], []),
    ("writable-proc-sys", ["--security-opt", "systempaths=unconfined"], []),
    ("writable-proc-sys", ["--tmpfs", "/proc/sys"], ["--tmpfs", "/scratch"]),
    ("sensitive-mount", ["-v", "/etc:/x"], ["-v", "{safe}:/x"]),
    ("sensitive-mount", ["-v", "//etc/../etc/:/x"], ["-v", "{safe}/:/x"]),
    ("sensitive-mount", ["--mount", "type=bind,src=/var/run/docker.sock,dst=/s"], ["--mount", "type=bind,src={safe},dst=/s"]),
    ("sensitive-mount", ["-v", "/:/host:ro"], []),
    ("sensitive-mount", ["-v", "{root}:/x"], []),
    ("sensitive-mount", ["-v", "{root}/..:/x"], []),
    ("sensitive-mount", ["--mount", "type=volume,dst=/x,volume-driver=local,volume-opt=type=none,"
                                    "volume-opt=o=bind,volume-opt=device=/etc"],
                        ["--mount", "type=volume,dst=/x,volume-driver=local,volume-opt=type=none,"
                                    "volume-opt=o=bind,volume-opt=device={safe}"]),
    ("sensitive-device", ["--device", "/dev/mem"], ["--device", "/dev/null:/dev/mynull"]),
    ("sensitive-device", ["--device", "/dev/kmsg"], ["--device", "/dev/zero"]),
    ("sensitive-device", ["--device", "/dev/vda"], []),
    ("device-cgroup-rule", ["--device-cgroup-rule", "a *:* rwm"], ["--device-cgroup-rule", "c 10:229 rwm"]),
    ("device-cgroup-rule", ["--device-cgroup-rule", "b 7:* rwm"], []),
    ("kernel-memory", ["--kernel-memory", "64m"], ["-m", "64m"]),
    ("blkio-weight", ["--blkio-weight", "500"], ["--blkio-weight", "0"]),
    ("attach-stdin-only", ["-a", "stdin"], ["-a", "stdin", "-a", "stdout"]),
    ("health-labels", ["--label", "dockguard.health.cmd=true", "--label", "dockguard.health.interval=-1s"],
                      ["--label", "dockguard.health.cmd=true", "--label", "dockguard.health.interval=2s"]),
]


@pytest.mark.parametrize("rule,bad,good", CREATE_CASES, ids=[f"{c[0]}:{' '.join(c[1])}" for c in CREATE_CASES])
def test_create_rule(guarded, safe_dir, rule, bad, good):
    root = str(guarded.daemon.data_root)
    fill = lambda args: [a.replace("{safe}", safe_dir).replace("{root}", root) for a in args]
    env = V141 if rule == "kernel-memory" else None
    denied(guarded.docker("create", *fill(bad), "busybox", "true", env=env), rule)
    allowed(guarded.docker("create", *fill(good), "busybox", "true", env=env))


def test_sensitive_mount_through_host_symlink(guarded, tmp_path):
    link = tmp_path / "innocent"
    link.symlink_to("/etc")
    denied(guarded.docker("create", "-v", f"{link}:/x", "busybox", "true"), "sensitive-mount")


def test_sensitive_device_under_another_name(guarded, tmp_path):
    node = tmp_path / "notmem"
    os.mknod(node, 0o600 | 0o020000, os.makedev(1, 1))  # char 1:1 is /dev/mem
    denied(guarded.docker("create", "--device", str(node), "busybox", "true"), "sensitive-device")


def test_blkio_weight_device_needs_cfq_or_bfq(guarded, tmp_path):
    r = guarded.docker("create", "--blkio-weight-device", "/dev/vda:500", "busybox", "true")
    sched = open("/sys/block/vda/queue/scheduler").read()
    assert "[bfq]" not in sched and "[cfq]" not in sched
    denied(r, "blkio-weight-device")
    assert "echo bfq > /sys/block/vda/queue/scheduler" in r.stderr
    # benign twin: a loop disk switched to bfq
    img = tmp_path / "disk.img"
    img.write_bytes(b"\0" * (4 << 20))
    loop = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True, check=True).stdout.strip()
    try:
        with open(f"/sys/block/{os.path.basename(loop)}/queue/scheduler", "w") as f:
            f.write("bfq")
        allowed(guarded.docker("create", "--blkio-weight-device", f"{loop}:500", "busybox", "true"))
    finally:
        subprocess.run(["losetup", "-d", loop])


def test_shell_without_tty(guarded):
    denied(guarded.docker("create", "busybox"), "shell-without-tty")  # image CMD is sh
    denied(guarded.docker("create", "busybox", "sh"), "shell-without-tty")
    denied(guarded.docker("create", "-i", "busybox", "/bin/bash"), "shell-without-tty")
    allowed(guarded.docker("create", "-ti", "busybox", "sh"))
    allowed(guarded.docker("create", "busybox", "sh", "-c", "true"))
    r = guarded.docker("run", "--rm", "busybox", "sh", "-c", "echo ok")
    allowed(r)
    assert r.stdout == "ok\n"


def test_systemd_in_non_system_container(guarded):
    denied(guarded.docker("create", "busybox", "/sbin/init"), "systemd-non-system")
    denied(guarded.docker("create", "--entrypoint", "/lib/systemd/systemd", "busybox"), "systemd-non-system")
    allowed(guarded.docker("create", "--label", "dockguard.system-container=true", "busybox", "/sbin/init"))


# API >= 1.42 has no KernelMemory: CLIs >= 23 drop the flag's value there and dockerd >= 23
# ignores it. On API 1.41, which every engine tested still serves, the CLI sends it, and so
# can any client: the rule must catch it there.
V141 = {"DOCKER_API_VERSION": "1.41"}


def test_kernel_memory_in_a_raw_v141_request(guarded, running):
    status, text = raw_create(guarded.daemon.socket, {"Image": "busybox", "Cmd": ["true"],
                                                      "HostConfig": {"KernelMemory": 64 << 20}})
    assert status == 403 and "[kernel-memory]" in text, text
    status, text = raw(guarded.daemon.socket, "POST", f"/v1.41/containers/{running}/update",
                       json.dumps({"KernelMemory": 64 << 20}))
    assert status == 403 and "[kernel-memory]" in text, text
    status, text = raw(guarded.daemon.socket, "POST", f"/v1.41/containers/{running}/update",
                       json.dumps({"Memory": 64 << 20, "MemorySwap": -1}))
    assert status == 200, text


def test_kernel_memory_and_blkio_on_update(guarded, running):
    denied(guarded.docker("update", "--kernel-memory", "64m", running, env=V141), "kernel-memory")
    denied(guarded.docker("update", "--blkio-weight", "300", running), "blkio-weight")
    allowed(guarded.docker("update", "--cpu-shares", "512", running))


def test_privileged_exec(guarded, running):
    denied(guarded.docker("exec", "--privileged", running, "true"), "privileged")
    allowed(guarded.docker("exec", running, "true"))


def test_share_namespace_with_container_is_fine(guarded, running):
    allowed(guarded.docker("create", "--pid", f"container:{running}", "--net", f"container:{running}",
                           "busybox", "true"))


def test_name_shadowing_ids(guarded):
    cid = guarded.docker("create", "busybox", "true").stdout.strip()
    assert len(cid) == 64
    denied(guarded.docker("create", "--name", cid, "busybox", "true"), "name-shadows-id")
    denied(guarded.docker("create", "--name", cid[:12], "busybox", "true"), "name-shadows-id")
    r = guarded.docker("create", "--name", cid[:12], "busybox", "true")
    assert "is a prefix of the ID" in r.stderr
    allowed(guarded.docker("create", "--name", uniq("cafe"), "busybox", "true"))
    other = guarded.docker("create", "--name", uniq("ren"), "busybox", "true").stdout.strip()
    denied(guarded.docker("rename", other, cid[:6]), "name-shadows-id")
    allowed(guarded.docker("rename", other, uniq("renamed")))


def test_force_remove(guarded):
    name = uniq("rmf")
    allowed(guarded.docker("create", "--name", name, "busybox", "true"))
    denied(guarded.docker("rm", "-f", name), "force-remove")
    allowed(guarded.docker("rm", name))


def test_kill_is_audited(guarded):
    name = uniq("kill")
    allowed(guarded.docker("run", "-d", "--name", name, "busybox", "sleep", "600"))
    allowed(guarded.docker("kill", name))
    recs = [r for r in guarded.audit_lines() if r["action"] == "container.kill" and r["container"] == name]
    assert recs and recs[-1]["decision"] == "audit" and recs[-1]["rule"] == ["kill"]


def test_stop_with_negative_timeout_is_audited(guarded):
    name = uniq("stop")
    allowed(guarded.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                           "trap 'exit 0' TERM; while true; do sleep 0.1; done"))
    allowed(guarded.docker("stop", "-t", "-1", name))
    recs = [r for r in guarded.audit_lines() if r["action"] == "container.stop" and r["container"] == name]
    assert recs[-1]["decision"] == "audit" and recs[-1]["rule"] == ["stop-negative-timeout"]


def test_restart_of_autoremove_container(guarded):
    rm_name, keep = uniq("rmrestart"), uniq("restart")
    allowed(guarded.docker("run", "-d", "--rm", "--name", rm_name, "busybox", "sleep", "600"))
    denied(guarded.docker("restart", "-t", "0", rm_name), "restart-autoremove")
    allowed(guarded.docker("run", "-d", "--name", keep, "busybox", "sleep", "600"))
    allowed(guarded.docker("restart", "-t", "0", keep))


def test_rename_of_restarting_container(guarded):
    name = uniq("flap")
    allowed(guarded.docker("run", "-d", "--restart", "always", "--name", name, "busybox", "false"))
    # Docker's restart backoff doubles from 100 ms: after 5 restarts the container stays in
    # "restarting" for over a second, long enough for the plugin's lookup to see it there.
    deadline = time.monotonic() + 60
    r = None
    while time.monotonic() < deadline:
        count, restarting = guarded.docker("inspect", "-f", "{{.RestartCount}} {{.State.Restarting}}",
                                           name).stdout.split()
        if int(count) >= 5 and restarting == "true":
            r = guarded.docker("rename", name, uniq("flap2"))
            break
        time.sleep(0.05)
    assert r is not None, "the container never settled into a long restart backoff"
    denied(r, "rename-restarting")
    steady = uniq("steady")
    allowed(guarded.docker("run", "-d", "--name", steady, "busybox", "sleep", "600"))
    allowed(guarded.docker("rename", steady, uniq("steady2")))


def test_cp_into_non_root_container_is_audited(guarded, tmp_path):
    name = uniq("cpuser")
    allowed(guarded.docker("run", "-d", "--user", "65534", "--name", name, "busybox", "sleep", "600"))
    f = tmp_path / "f.txt"
    f.write_text("x")
    allowed(guarded.docker("cp", str(f), f"{name}:/tmp/f.txt"))
    recs = [r for r in guarded.audit_lines() if r["action"] == "container.archive_put" and r["container"] == name]
    assert recs[-1]["decision"] == "audit" and recs[-1]["rule"] == ["cp-nonroot"]
    allowed(guarded.docker("cp", "-a", str(f), f"{name}:/tmp/g.txt"))
    recs = [r for r in guarded.audit_lines() if r["action"] == "container.archive_put" and r["container"] == name]
    assert recs[-1]["decision"] == "allow"


def test_file_bind_mount_is_audited(guarded, tmp_path, safe_dir):
    f = tmp_path / "conf.txt"
    f.write_text("x")
    r = guarded.docker("create", "-v", f"{f}:/conf.txt", "busybox", "true")
    allowed(r)
    cid = r.stdout.strip()
    recs = [x for x in guarded.audit_lines() if x["action"] == "container.create"]
    assert any(x["decision"] == "audit" and x["rule"] == ["file-bind-mount"] for x in recs[-3:])
    assert cid


def test_health_with_no_healthcheck(guarded):
    body = {"Image": "busybox", "Cmd": ["true"], "Healthcheck": {"Test": ["NONE"], "Interval": 5_000_000_000}}
    status, text = raw_create(guarded.daemon.socket, body)
    assert status == 403 and "[health-with-no-healthcheck]" in text, text
    status, text = raw_create(guarded.daemon.socket, {"Image": "busybox", "Cmd": ["true"],
                                                      "Healthcheck": {"Test": ["NONE"]}})
    assert status == 201, text


def test_volume_create_with_bind_to_sensitive_path(guarded, safe_dir):
    denied(guarded.docker("volume", "create", "--opt", "type=none", "--opt", "o=bind",
                          "--opt", "device=/etc", uniq("vol")), "sensitive-volume")
    allowed(guarded.docker("volume", "create", "--opt", "type=none", "--opt", "o=bind",
                           "--opt", f"device={safe_dir}", uniq("vol")))


def test_service_mounts_and_caps(guarded, safe_dir):
    denied(guarded.docker("service", "create", "--mount", "type=bind,src=/etc,dst=/x", "busybox"),
           "sensitive-mount")
    denied(guarded.docker("service", "create", "--cap-add", "SYS_ADMIN", "busybox"), "dangerous-capability")
    r = guarded.docker("service", "create", "--mount", f"type=bind,src={safe_dir},dst=/x", "busybox")
    assert DENIED not in r.stderr  # dockerd itself answers: not a swarm manager
    assert "swarm" in r.stderr.lower()


def test_plugin_installs_asking_for_host_privileges(guarded):
    sock = guarded.daemon.socket
    status, text = raw(sock, "POST", "/v1.41/plugins/pull?remote=example/evil:latest",
                       json.dumps([{"Name": "network", "Value": ["host"]},
                                   {"Name": "mount", "Value": ["/etc"]}]))
    assert status == 403 and "[plugin-privileges]" in text, text
    status, text = raw(sock, "POST", "/v1.41/plugins/pull?remote=example/benign:latest",
                       json.dumps([{"Name": "network", "Value": ["bridge"]}]))
    assert "[plugin-privileges]" not in text and DENIED not in text  # dockerd tries (no registry)


def test_authz_plugin_cannot_disable_itself(guarded):
    denied(guarded.docker("plugin", "disable", guarded.plugin.name), "plugin-self-protect")
    r = guarded.docker("plugin", "disable", "no-such-plugin")
    assert DENIED not in r.stderr and r.returncode != 0


def test_unknown_route_is_audited(guarded):
    # a real route of dockerd's (experimental checkpoints) that dockguard has no rules for
    status, _text = raw(guarded.daemon.socket, "POST", "/v1.41/containers/x/checkpoints", "{}")
    assert status == 501  # allowed by dockguard; dockerd answers itself
    recs = [r for r in guarded.audit_lines() if r["action"] == "unknown"]
    assert recs[-1]["decision"] == "audit" and recs[-1]["rule"] == ["unknown-route"]
    assert recs[-1]["uri"] == "/v1.41/containers/x/checkpoints"


def test_hook_spec_label(guarded, tmp_path):
    hooks = guarded.daemon.data_root / "hooks"
    hooks.mkdir(exist_ok=True)
    prog = hooks / "noop-hook"
    prog.write_text("#!/bin/sh\nexit 0\n")
    prog.chmod(0o755)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"prestart": [{"path": str(prog), "args": ["noop-hook"], "env": [], "timeout": 5}]}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"prestart": [{"path": str(prog), "args": ["noop-hook"], "env": [], "timeout": 121}]}))
    # The built-in policy grants specs only in /etc/docker/hookspecs (hooks run as root): a
    # spec anywhere else is refused, valid or not. Granted specs, and each fault of one, are
    # shown in tests/hookbin/test_e2e_at_create.py and test_e2e_trust.py.
    for spec in (bad, good):
        r = guarded.docker("create", "--label", f"dockguard.hook-spec={spec}", "busybox", "true")
        denied(r, "hook-spec")
        assert "must lie in a spec directory the host grants (/etc/docker/hookspecs" in r.stderr


def _all_syscalls_but(excluded):
    import pyseccomp
    arch = pyseccomp.system_arch()
    names = []
    for nr in range(0, 460):
        try:
            name = pyseccomp.resolve_syscall(arch, nr)
        except Exception:  # noqa: BLE001 - no syscall with that number
            continue
        name = name.decode() if isinstance(name, bytes) else name
        if name and name not in excluded:
            names.append(name)
    return names


def test_seccomp_profile(guarded, tmp_path):
    from authz.seccomp import PROBES
    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                 "syscalls": [{"names": ["reboot"], "action": "SCMP_ACT_ERRNO"}]}))
    r = guarded.docker("run", "--rm", "--security-opt", f"seccomp={loose}", "busybox", "true")
    denied(r, "seccomp-profile")
    assert "mount" in r.stderr
    # benign twin: allow-list everything the default profile also allows; the container runs
    probes = {name for name, _ in PROBES}
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": _all_syscalls_but(probes), "action": "SCMP_ACT_ALLOW"},
                     {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}))
    r = guarded.docker("run", "--rm", "--security-opt", f"seccomp={strict}", "busybox", "echo", "confined")
    allowed(r)
    assert r.stdout == "confined\n"
