"""Issue 7 on real dockerds (20.10 and 26): holes 2 (annotations), 4 (rename through a chunked
form body), 5 (old-API start bodies wrapped in HostConfig), 7 (--runtime) and 9 (every health
option), each refused with its rule and shown next to a benign twin that still works; and the
requests the plugin used to read more strictly than dockerd, now allowed."""
from __future__ import annotations

import json
import shutil
import socket
import uuid

import pytest

from tests.conftest import engine_info

from .rawapi import _dechunk, create, raw

DENIED = "authorization denied by plugin"


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def chunked(sock_path, method: str, target: str, body: bytes, headers: list[str]) -> tuple[int, str]:
    """One request with a chunked body: Go drops Transfer-Encoding and shows no Content-Length."""
    head = [f"{method} {target} HTTP/1.1", "Host: docker", "Connection: close",
            "Transfer-Encoding: chunked"] + headers
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(str(sock_path))
        s.sendall(data)
        resp = b""
        while part := s.recv(65536):
            resp += part
    header, _, payload = resp.partition(b"\r\n\r\n")
    if b"Transfer-Encoding: chunked" in header:
        payload = _dechunk(payload)
    return int(header.split(b" ", 2)[1]), payload.decode(errors="replace")


def inspect(sock, ref) -> dict:
    status, text = raw(sock, "GET", f"/containers/{ref}/json")
    assert status == 200, text
    return json.loads(text)


def new_container(sock, name: str | None = None, **extra) -> str:
    status, text = create(sock, {"Image": "busybox", "Cmd": ["sleep", "600"], **extra},
                          target="/containers/create" + (f"?name={name}" if name else ""))
    assert status == 201, text
    return json.loads(text)["Id"]


def denied(status_text, rule: str) -> str:
    status, text = status_text
    assert status == 403 and f"[{rule}]" in text and "Safely:" in text, (status, text)
    return text


# ---- hole 4: rename (and stop/restart/kill) with a body dockerd does not show the plugin ----

SMUGGLED = [
    ["Content-Type: application/x-www-form-urlencoded"],
    # Go parses by the first Content-Type, dockerd shows the plugin the last
    ["Content-Type: application/x-www-form-urlencoded", "Content-Type: application/json"],
]


@pytest.mark.parametrize("headers", SMUGGLED)
def test_chunked_form_rename_really_renames_unguarded(plain_daemon, headers):
    """The request is real: on a daemon without the plugin the body's name wins."""
    sock = plain_daemon.socket
    a = new_container(sock, uniq("b"))
    b = new_container(sock)
    status, text = chunked(sock, "POST", f"/v1.41/containers/{a}/rename?name={uniq('safe')}",
                           f"name={b[:12]}".encode(), headers)
    assert status == 204, text
    assert inspect(sock, a)["Name"] == f"/{b[:12]}"  # now shadows b's short ID


@pytest.mark.parametrize("headers", SMUGGLED)
def test_chunked_form_rename_is_refused(guarded, headers):
    sock = guarded.daemon.socket
    a_name = uniq("b")
    a = new_container(sock, a_name)
    b = new_container(sock)
    text = denied(chunked(sock, "POST", f"/v1.41/containers/{a}/rename?name={uniq('safe')}",
                          f"name={b[:12]}".encode(), headers), "malformed-request")
    assert "form-encoded body" in text
    assert inspect(sock, a)["Name"] == f"/{a_name}"


@pytest.mark.parametrize("action", ["stop?t=1", "restart?t=1", "kill?signal=KILL"])
def test_chunked_body_on_stop_restart_kill_is_refused(guarded, action):
    sock = guarded.daemon.socket
    a = new_container(sock)
    denied(chunked(sock, "POST", f"/containers/{a}/{action}", b"t=-1&signal=HUP",
                   ["Content-Type: application/x-www-form-urlencoded"]), "malformed-request")


def test_cli_rename_stop_restart_kill_still_work(guarded):
    name = uniq("cli")
    assert guarded.docker("create", "--name", name, "busybox", "sleep", "600").returncode == 0
    new = uniq("cli2")
    r = guarded.docker("rename", name, new)
    assert r.returncode == 0, r.stderr
    for args in (("start", new), ("stop", "-t", "1", new), ("restart", "-t", "1", new), ("kill", new)):
        r = guarded.docker(*args)
        assert r.returncode == 0 and DENIED not in r.stderr, (args, r.stderr)


def test_sdk_rename_stop_restart_kill_still_work(guarded):
    import docker
    api = docker.APIClient(base_url=guarded.daemon.host, version="auto", timeout=60)
    try:
        cid = api.create_container("busybox", ["sleep", "600"], name=uniq("sdk"))["Id"]
        new = uniq("sdk2")
        api.rename(cid, new)
        assert inspect(guarded.daemon.socket, cid)["Name"] == f"/{new}"
        api.start(cid)
        api.stop(cid, timeout=1)
        api.restart(cid, timeout=1)
        api.kill(cid)
    finally:
        api.close()


# ---- hole 5: an old-API start body in either shape ----

OLD_START = [
    ("v1.22", '{"HostConfig": {"PidMode": "host"}}'),
    ("v1.22", '{"hostconfig": {"PidMode": "host"}}'),
    ("v01.23", '{"HOSTCONFIG": {"pidmode": "host"}}'),
    ("v1.23.0", '{"Ho\u017ftConfig": {"PidMode": "host"}}'),
    ("v1.23", '{"HostConfig": {"Privileged": false}, "HostConfig": null, "PidMode": "host"}'),
    ("v1.23", '{"PidMode": "host"}'),
]


def old_api_accepted() -> bool:
    """dockerd < 25 still serves API 1.12-1.23; 26's minimum is 1.24."""
    return engine_info().get("version", "0").split(".")[0] in ("20", "23", "24")


@pytest.mark.parametrize("version,body", OLD_START)
def test_old_api_start_body_wrapped_or_not_is_refused(guarded, version, body):
    sock = guarded.daemon.socket
    cid = new_container(sock)
    denied(raw(sock, "POST", f"/{version}/containers/{cid}/start", body), "host-namespace")
    assert inspect(sock, cid)["HostConfig"]["PidMode"] == ""


@pytest.mark.parametrize("body", ['{"HostConfig": {"Memory": 0}}',
                                  '{"PidMode": "host", "HostConfig": {}}',  # dockerd ignores the top level
                                  '{"HostConfig": {"PidMode": "host"}, "HostConfig": null}'])  # erased
def test_old_api_start_body_benign_twin(guarded, body):
    sock = guarded.daemon.socket
    cid = new_container(sock)
    status, text = raw(sock, "POST", f"/v1.22/containers/{cid}/start", body)
    if old_api_accepted():
        assert status == 204, text
        info = inspect(sock, cid)
        assert info["State"]["Running"] and info["HostConfig"]["PidMode"] == ""
        raw(sock, "POST", f"/containers/{cid}/kill", None, headers=["Content-Length: 0"])
    else:  # the plugin lets it through; dockerd 26 refuses the old version itself
        assert status == 400 and "too old" in text, text


# ---- hole 7: the runtime ----

@pytest.fixture(scope="module")
def runtime_policy(tmp_path_factory):
    pol = tmp_path_factory.mktemp("pol") / "policy.toml"
    pol.write_text('[lists]\nruntimes = ["dockguard"]\nannotations = ["com.example.*"]\n')
    return str(pol)


def runtimes():
    return {"dockguard": {"path": shutil.which("runc") or "runc"}}


@pytest.fixture(scope="module")
def rt_default(guarded_factory, runtime_policy):
    """runtimes = ["dockguard"], and the daemon's default-runtime is dockguard."""
    return guarded_factory(policy=runtime_policy, runtimes=runtimes(), default_runtime="dockguard")


@pytest.fixture(scope="module")
def rt_runc(guarded_factory, runtime_policy):
    """runtimes = ["dockguard"], but the daemon's default-runtime is still runc."""
    return guarded_factory(policy=runtime_policy, runtimes=runtimes())


def test_other_runtime_is_refused(rt_default):
    r = rt_default.docker("create", "--runtime", "runc", "busybox", "true")
    assert DENIED in r.stderr and "[runtime]" in r.stderr and "--runtime runc" in r.stderr, r.stderr
    denied(create(rt_default.daemon.socket, {"Image": "busybox", "Runtime": "runc"},
                  target="/containers/create"), "runtime")  # top level, no HostConfig


def test_allowed_and_default_runtime_run(rt_default):
    for args in (("--runtime", "dockguard"), ()):
        r = rt_default.docker("run", "--rm", *args, "busybox", "echo", "ok")
        assert r.returncode == 0 and r.stdout == "ok\n", (args, r.stderr)


def test_default_runtime_outside_the_list_is_refused(rt_runc):
    r = rt_runc.docker("create", "busybox", "true")
    assert DENIED in r.stderr and "[runtime]" in r.stderr and "default runtime 'runc'" in r.stderr, r.stderr
    r = rt_runc.docker("run", "--rm", "--runtime", "dockguard", "busybox", "echo", "ok")
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr


# ---- hole 2: annotations (API >= 1.43) ----

@pytest.mark.engine(min_api="1.43", reason="annotations exist from API 1.43 (dockerd 24)")
@pytest.mark.parametrize("annotation,why", [
    ("dockguard.hook-spec=/nonexistent/spec.json", "annotation dockguard.hook-spec"),
    ("org.systemd.property.DeviceAllow=/dev/sda rwm", "systemd unit property"),
    ("run.oci.keep_original_groups=1", "not in the policy's annotations list"),
])
def test_annotations_are_refused_at_create(rt_default, annotation, why):
    r = rt_default.docker("create", "--annotation", annotation, "busybox", "true")
    assert DENIED in r.stderr and "[annotations]" in r.stderr and why in r.stderr, r.stderr


@pytest.mark.engine(min_api="1.43", reason="annotations exist from API 1.43 (dockerd 24)")
def test_allowed_annotation_is_created_and_kept(rt_default):
    name = uniq("ann")
    r = rt_default.docker("create", "--name", name, "--annotation", "com.example.team=web", "busybox", "true")
    assert r.returncode == 0, r.stderr
    assert inspect(rt_default.daemon.socket, name)["HostConfig"]["Annotations"] == {"com.example.team": "web"}


def test_annotations_by_raw_api(rt_default):
    """Judged at the daemon's own API version; below 1.43 dockerd drops them and so do we."""
    sock = rt_default.daemon.socket
    bad = {"Image": "busybox", "Cmd": ["true"],
           "HostConfig": {"Annotations": {"org.systemd.property.DeviceAllow": "/dev/sda rwm"}}}
    denied(create(sock, bad, target="/containers/create"), "annotations")
    status, text = create(sock, bad, target="/v1.41/containers/create")
    assert status == 201, text
    assert not inspect(sock, json.loads(text)["Id"])["HostConfig"].get("Annotations")


# ---- hole 9: every health option conflicts with --no-healthcheck ----

@pytest.mark.parametrize("opt", ["StartInterval", "Interval", "Retries"])
def test_health_option_with_no_healthcheck_is_refused(guarded, opt):
    sock = guarded.daemon.socket
    body = {"Image": "busybox", "Cmd": ["true"], "Healthcheck": {"Test": ["NONE"], opt: 1000000000}}
    denied(create(sock, body, target="/containers/create"), "health-with-no-healthcheck")
    body["Healthcheck"]["Test"] = ["CMD", "true"]
    status, text = create(sock, body, target="/containers/create")
    assert status == 201, text


# ---- requests the plugin used to read more strictly than dockerd ----

@pytest.mark.parametrize("target,body", [
    ("http:/v1.41/containers/create", {"Image": "busybox", "Cmd": ["true"]}),
    ("/v1.41/containers/create", {"Image": "busybox", "Cmd": ["true"], "Privileged": True, "HostConfig": {}}),
    ("/v1.41/containers/create", '{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"PidMode": "host"},'
                                 ' "HostConfig": null}'),
    ("/v1.41/containers/create", {"Image": "busybox", "Cmd": ["true"],
                                  "HostConfig": {"Capabilities": ["CAP_SYS_ADMIN"]}}),
])
def test_harmless_requests_dockerd_accepts_are_allowed(guarded, target, body):
    sock = guarded.daemon.socket
    status, text = create(sock, body, target=target)
    assert status == 201, text
    hc = inspect(sock, json.loads(text)["Id"])["HostConfig"]
    assert not hc["Privileged"] and hc["PidMode"] == "" and not hc.get("CapAdd")


@pytest.mark.parametrize("host_config,rule", [({"IpcMode": "Host"}, "host-namespace"),
                                              ({"SecurityOpt": ["seccomp=Unconfined"]}, "seccomp-unconfined")])
def test_deliberate_strictness(guarded, plain_daemon, host_config, rule):
    """Refused although dockerd does not read them as host/unconfined: such a container
    fails at create (26) or at start (20.10) anyway, so the strictness costs nobody."""
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config}
    denied(create(guarded.daemon.socket, body), rule)
    status, text = create(plain_daemon.socket, body)
    if status == 201:
        cid = json.loads(text)["Id"]
        status, text = raw(plain_daemon.socket, "POST", f"/containers/{cid}/start", None,
                           headers=["Content-Length: 0"])
    assert status >= 400, text
