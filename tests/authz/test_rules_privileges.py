"""privileged, host-namespace: over plain request data, evasions included."""
from __future__ import annotations

import pytest

from authz.context import LookupFailed

from .helpers import FakeContext, allowed, create, create_problems, decide, denied_by, hc, problems


def test_privileged_create():
    msg = denied_by(create(hc(Privileged=True)), "privileged")
    assert "--privileged" in msg
    allowed(create(hc(Privileged=False)))


@pytest.mark.parametrize("body", [
    '{"Image":"x","Cmd":["true"],"Ho\u017ftConfig":{"Privileged":true}}',
    '{"image":"x","cmd":["true"],"hostconfig":{"privileged":true}}',
    '{"Image":"x","Cmd":["true"],"Privileged":true}',
    '{"Image":"x","Cmd":["true"],"HostConfig":null,"Privileged":true}',
    '{"Image":"x","Cmd":["true"],"HostConfig":{"Privileged":true},"HostConfig":{"Memory":1}}',
    '{"Image":"x","Cmd":["true"],"HostConfig":{"privileged":false,"PRIVILEGED":true}}',
    # the HostConfig erased by null: dockerd applies the top-level fields instead (checked)
    '{"Image":"x","Cmd":["true"],"HostConfig":{"Privileged":false},"HostConfig":null,"Privileged":true}',
    '{"Image":"x","Cmd":["true"],"HostConfig":{},"HostConfig":null,"HostConfig":{"Privileged":true}}',
])
def test_privileged_evasions(body):
    denied_by(create(body), "privileged")


def test_privileged_case_variant_later_false_wins_as_in_go():
    allowed(create('{"Image":"x","Cmd":["true"],"HostConfig":{"Privileged":true,"privileged":false}}'))


@pytest.mark.parametrize("ch", ["\u212a", "\u0131", "\u0130"])
def test_privileged_ambiguous_folding_refused(ch):
    key = "Pr" + ch + "vileged" if ch != "\u212a" else "Privileged\u212a"
    out = create('{"Image":"x","Cmd":["true"],"HostConfig":{"%s":true}}' % key)
    assert "ambiguous key" in denied_by(out, "malformed-request")


def test_privileged_exec():
    msg = denied_by(decide("POST", "/v1.41/containers/web/exec", {"Privileged": True, "Cmd": ["true"]}), "privileged")
    assert "privileged exec" in msg
    allowed(decide("POST", "/v1.41/containers/web/exec", {"Cmd": ["true"]}))
    denied_by(decide("POST", "/containers/web/exec", '{"Cmd":["true"],"pRIVILEGED":true}'), "privileged")


def test_privileged_old_api_start():
    denied_by(decide("POST", "/v1.23/containers/web/start", {"Privileged": True}), "privileged")
    allowed(decide("POST", "/v1.23/containers/web/start", {"Privileged": False}))
    allowed(decide("POST", "/v1.41/containers/web/start", None, headers={"Content-Length": "0"}))


@pytest.mark.parametrize("field,flag", [("PidMode", "--pid"), ("IpcMode", "--ipc"), ("NetworkMode", "--net"),
                                        ("UTSMode", "--uts"), ("UsernsMode", "--userns"),
                                        ("CgroupnsMode", "--cgroupns")])
def test_host_namespaces(field, flag):
    msg = denied_by(create(hc(**{field: "host"})), "host-namespace")
    assert f"{flag} host" in msg
    for benign in ("", "private", "container:web", "bridge" if field == "NetworkMode" else "shareable"):
        assert not create_problems("host-namespace", hc(**{field: benign}))


@pytest.mark.parametrize("mode", ["HOST", "Host", " host "])
def test_host_namespace_spelling(mode):
    assert create_problems("host-namespace", hc(PidMode=mode)) == [f"--pid {mode}"]


def test_host_namespace_top_level_and_folded():
    denied_by(create({"Image": "x", "Cmd": ["true"], "PidMode": "host"}), "host-namespace")
    denied_by(create('{"Image":"x","Cmd":["true"],"HostConfig":{"pidmode":"host"}}'), "host-namespace")
    denied_by(create('{"Image":"x","Cmd":["true"],"HostConfig":{"PidMode":"host"},"HostConfig":{"Memory":1}}'),
              "host-namespace")
    # PidMode given twice: Go keeps the last, we look at both (stricter)
    denied_by(create('{"Image":"x","Cmd":["true"],"HostConfig":{"PidMode":"host"},"PidMode":""}'), "host-namespace")


def test_host_namespace_service_network():
    body = {"TaskTemplate": {"ContainerSpec": {"Image": "x"}, "Networks": [{"Target": "host"}]}}
    msg = denied_by(decide("POST", "/services/create", body), "host-namespace")
    assert "service network host" in msg
    denied_by(decide("POST", "/services/s/update", {"Networks": [{"Target": "HOST"}]}), "host-namespace")
    allowed(decide("POST", "/services/create", {"TaskTemplate": {"ContainerSpec": {"Image": "x"},
                                                                  "Networks": [{"Target": "overlay"}]}}))


def test_host_namespace_create_endpoint_named_host():
    body = {"Image": "x", "Cmd": ["true"], "NetworkingConfig": {"EndpointsConfig": {"host": {}}}}
    denied_by(create(body), "host-namespace")


def test_build_network_host():
    msg = denied_by(decide("POST", "/v1.41/build?networkmode=host&t=x"), "host-namespace")
    assert "docker build --network host" in msg
    denied_by(decide("POST", "/build?networkmode=HOST"), "host-namespace")
    allowed(decide("POST", "/build?networkmode=default"))
    allowed(decide("POST", "/build"))
    assert problems("host-namespace", "POST", "/build?networkmode=none") is None


# --net/--pid/--ipc container:X joins X's namespace: X on the host's is the host's
HOSTY = {"hostnet": {"HostConfig": {"NetworkMode": "host", "PidMode": "host", "IpcMode": "host"}},
         "plain": {"HostConfig": {"NetworkMode": "bridge", "PidMode": "", "IpcMode": "private"}}}


@pytest.mark.parametrize("field,flag", [("NetworkMode", "net"), ("PidMode", "pid"), ("IpcMode", "ipc")])
def test_joining_a_container_that_uses_the_host_namespace(field, flag):
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {field: "container:hostnet"}}
    out = create_problems("host-namespace", body, containers=HOSTY)
    assert out and f"--{flag} container:hostnet (that container uses the host's {flag} namespace)" in out[0]
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {field: "container:plain"}}
    assert not create_problems("host-namespace", body, containers=HOSTY)


def test_joining_a_container_needs_its_lookup_and_fails_closed():
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "container:x"}}
    ctx = FakeContext(fail={"container"})
    with pytest.raises(LookupFailed):
        create_problems("host-namespace", body, ctx=ctx)
