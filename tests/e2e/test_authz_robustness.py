"""Reading requests as dockerd reads them (evasions), failing closed on what cannot be read,
policies from a file, the in-flight limit, and nested lookups under load."""
from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from .rawapi import create, raw

DENIED = "authorization denied by plugin"


def inspect(g, cid):
    status, text = raw(g.daemon.socket, "GET", f"/v1.41/containers/{cid}/json")
    assert status == 200, text
    return json.loads(text)


# ---- evasions: every form dockerd honours is seen ----

EVASIONS = [
    ("Go folding of ſ", {"Image": "busybox", "Cmd": ["true"], "HoſtConfig": {"Privileged": True}}, "privileged"),
    ("lower-case keys", {"image": "busybox", "cmd": ["true"], "hostconfig": {"privileged": True}}, "privileged"),
    ("top-level HostConfig field", {"Image": "busybox", "Cmd": ["true"], "Privileged": True}, "privileged"),
    ("null HostConfig + top level", {"Image": "busybox", "Cmd": ["true"], "HostConfig": None, "Privileged": True}, "privileged"),
    ("CapAdd as a string", {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"CapAdd": "SYS_ADMIN"}}, "dangerous-capability"),
    ("CAP_ prefix, lower case", {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"CapAdd": ["cap_sys_module"]}}, "dangerous-capability"),
    ("Binds with // and ..", {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Binds": ["//etc/../etc/:/x"]}}, "sensitive-mount"),
    ("Mounts bind", {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Mounts": [{"Type": "bind", "Source": "/boot", "Target": "/b"}]}}, "sensitive-mount"),
    ("emptied MaskedPaths", {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"MaskedPaths": []}}, "writable-proc-sys"),
    ("emptied ReadonlyPaths", {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"ReadonlyPaths": []}}, "writable-proc-sys"),
    ("Cmd as a string", {"Image": "busybox", "Cmd": "sh"}, "shell-without-tty"),
]


@pytest.mark.parametrize("why,body,rule", EVASIONS, ids=[e[0] for e in EVASIONS])
def test_evasion_is_denied(guarded, why, body, rule):
    status, text = create(guarded.daemon.socket, body)
    assert status == 403, f"{why}: dockerd accepted it: {text}"
    assert f"[{rule}]" in text


def test_duplicate_objects_merge_as_in_go(guarded):
    body = '{"Image":"busybox","Cmd":["true"],"HostConfig":{"PidMode":"host"},"HostConfig":{"Memory":67108864}}'
    status, text = create(guarded.daemon.socket, body)
    assert status == 403 and "[host-namespace]" in text, text


def test_case_variant_duplicates_resolved_as_in_go(guarded):
    # Go: the later key wins. privileged=false last: allowed, and dockerd indeed runs it unprivileged
    body = '{"Image":"busybox","Cmd":["true"],"HostConfig":{"Privileged":true,"privileged":false}}'
    status, text = create(guarded.daemon.socket, body)
    assert status == 201, text
    assert inspect(guarded, json.loads(text)["Id"])["HostConfig"]["Privileged"] is False
    body = '{"Image":"busybox","Cmd":["true"],"HostConfig":{"privileged":false,"PRIVILEGED":true}}'
    status, text = create(guarded.daemon.socket, body)
    assert status == 403 and "[privileged]" in text


@pytest.mark.parametrize("target", [
    "/v1.41/containers/%63reate",
    "/containers/create",
    "http://docker/v1.41/containers/create",
    "/v1.41//containers/./create",
])
def test_uri_forms_are_routed_as_dockerd_routes_them(guarded, target):
    status, text = create(guarded.daemon.socket, {"Image": "busybox", "Cmd": ["true"],
                                                  "HostConfig": {"Privileged": True}}, target=target)
    assert status in (403, 301), text
    if status == 403:
        assert "[privileged]" in text


def test_force_in_any_spelling(guarded):
    name = f"rmf-{uuid.uuid4().hex[:6]}x"
    assert guarded.docker("create", "--name", name, "busybox", "true").returncode == 0
    for q in ("force=1", "force=True", "force=%20yes", "force=on", "force=1&force=0", "v=1&force=t"):
        status, text = raw(guarded.daemon.socket, "DELETE", f"/v1.41/containers/{name}?{q}")
        assert status == 403 and "[force-remove]" in text, (q, text)
    # Go reads the first value: force=0&force=1 is not forced, and dockerd removes it normally
    status, text = raw(guarded.daemon.socket, "DELETE", f"/v1.41/containers/{name}?force=0&force=1")
    assert status == 204, text


# ---- fail closed on what cannot be read; the next request is served normally ----

@pytest.mark.parametrize("body", [
    '{"Image": "busybox", ',                       # truncated
    "\x00\x01garbage",                              # not JSON
    '["Image", "busybox"]',                        # wrong shape
    '{"Image":"busybox","HostConfig":{"Privileged":"yes"}}',   # wrongly typed
    '{"Image":"busybox","HostConfig":{"Binds":"/etc:/x"}}',    # wrongly typed
    '{"Image":"busybox","HostConfig":{"Kernelmemory":1.5}}',   # wrongly typed
    '{"Image":"busybox","HostConfig":{"Prıvileged":true}}',    # ambiguous folding across Go releases
])
def test_unreadable_body_is_denied_with_a_message(guarded, body):
    status, text = raw(guarded.daemon.socket, "POST", "/v1.41/containers/create", body)
    assert status == 403, text
    assert "[malformed-request]" in text
    ps = guarded.docker("ps")
    assert ps.returncode == 0, ps.stderr


def test_missing_body_is_denied(guarded):
    status, text = raw(guarded.daemon.socket, "POST", "/v1.41/containers/create", b"")
    assert status == 403 and "[malformed-request]" in text, text
    # not JSON content-type: dockerd does not forward the body
    status, text = raw(guarded.daemon.socket, "POST", "/v1.41/containers/create",
                       '{"Image":"busybox","HostConfig":{"Privileged":true}}', content_type="text/plain")
    assert status == 403 and "[malformed-request]" in text, text


def _padded_create(size: int, privileged: bool) -> str:
    """A create body of `size` bytes (a label pads it)."""
    body = {"Image": "busybox", "Cmd": ["true"], "Labels": {"pad": ""},
            "HostConfig": {"Privileged": privileged}}
    body["Labels"]["pad"] = "x" * (size - len(json.dumps(body)))
    text = json.dumps(body)
    assert len(text) == size
    return text


def test_oversized_body_is_denied(guarded):
    """Each engine's real forwarding limit: dockerd shows plugins bodies up to 1 MiB (20.10,
    upstream up to 26.1) or 4 MiB (Debian 13's 26.1.5+dfsg1-9+deb13u1 and upstream since
    2026-02, which also refuse a longer body themselves). Found here, not assumed: a benign
    body just over 1 MiB is judged (allowed) on a 4 MiB engine, refused unread on a 1 MiB one;
    then a privileged body just under the limit is judged ([privileged]) and one just over
    it is never allowed ([malformed-request], or dockerd's own refusal)."""
    sock = guarded.daemon.socket
    mib = 1 << 20
    status, text = raw(sock, "POST", "/v1.41/containers/create", _padded_create(mib + 4096, False),
                       expect_continue=True)
    if status == 201:
        limit = 4 * mib
    else:
        assert status == 403 and "[malformed-request]" in text, text[:300]
        limit = mib
    if guarded.daemon.version()["Version"].startswith("20.10"):
        assert limit == mib
    status, text = raw(sock, "POST", "/v1.41/containers/create", _padded_create(limit - 4096, True),
                       expect_continue=True)
    assert status == 403 and "[privileged]" in text, text[:300]
    try:
        status, text = raw(sock, "POST", "/v1.41/containers/create", _padded_create(limit + 4096, True),
                           expect_continue=True)
    except ConnectionResetError:          # dockerd >= the 2026-02 fix refuses it and hangs up
        status, text = None, ""
    assert status != 201 and "[privileged]" not in text, text[:300]
    if status == 403:
        assert "[malformed-request]" in text, text[:300]
    assert guarded.docker("ps").returncode == 0


def test_garbage_to_the_plugin_itself_gets_a_denial_not_a_500(guarded):
    sock = guarded.plugin.socket
    for payload in (b"not json", b"[]", b'{"RequestMethod": 5}', b'{"RequestMethod":"POST","RequestUri":"/containers/create","RequestBody":"!!"}'):
        status, text = raw(sock, "POST", "/AuthZPlugin.AuthZReq", payload)
        assert status == 200, text
        reply = json.loads(text)
        assert reply["Allow"] is False and "malformed-request" in reply["Msg"]
    status, text = raw(sock, "POST", "/Plugin.Activate", b"")
    assert status == 200 and json.loads(text) == {"Implements": ["authz"]}


# ---- nested lookups under load never deadlock; failed lookups deny ----

def test_nested_lookups_under_load(guarded):
    """300 concurrent requests that each make the plugin call back into dockerd."""
    sock = guarded.daemon.socket

    def one(i):
        return raw(sock, "POST", f"/v1.41/containers/nosuch{i}/restart", b"", timeout=120)

    with ThreadPoolExecutor(max_workers=300) as pool:
        results = list(pool.map(one, range(300)))
    assert all(status == 404 for status, _ in results), {s for s, _ in results}
    assert guarded.docker("ps").returncode == 0


def test_failed_lookup_denies(guarded_factory, tmp_path):
    """A plugin whose daemon lookups fail refuses what needs them, and only that."""
    g = guarded_factory()
    g.plugin.stop()
    from dockguard.harness.plugin import PluginProcess
    p = PluginProcess(g.plugin.name, docker_host=f"unix://{tmp_path}/nowhere.sock",
                      log_path=g.plugin.log_path, plugin_dir=g.daemon.plugin_dir)
    p.start()
    g.plugin = p
    r = g.docker("restart", "anything")
    assert DENIED in r.stderr and "could not look up" in r.stderr, r.stderr
    # what needs no lookup still works; a start (the existing container is judged) does not
    assert g.docker("ps").returncode == 0
    r = g.docker("start", "anything")
    assert DENIED in r.stderr and "[existing-container] could not look up" in r.stderr, r.stderr


# ---- policy from a file ----

@pytest.fixture(scope="module")
def strict(guarded_factory, tmp_path_factory):
    pol = tmp_path_factory.mktemp("pol") / "policy.toml"
    pol.write_text('[rules]\nunknown-route = "deny"\nkill = "deny"\nprivileged = "audit"\n'
                   'sensitive-volume = "off"\n'
                   '[lists]\nsensitive_paths = ["/srv/secret"]\ndangerous_capabilities = ["chown"]\n'
                   '[limits]\nmax_inflight = 2\ninflight_ttl_seconds = 60\n')
    return guarded_factory(policy=str(pol))


def test_policy_levels_and_lists(strict):
    assert "[unknown-route]" in raw(strict.daemon.socket, "POST", "/v1.41/containers/x/checkpoints", "{}")[1]
    name = f"k-{uuid.uuid4().hex[:6]}x"
    assert strict.docker("run", "-d", "--name", name, "busybox", "sleep", "600").returncode == 0
    r = strict.docker("kill", name)
    assert DENIED in r.stderr and "[kill]" in r.stderr
    r = strict.docker("create", "--privileged", "busybox", "true")  # audit: allowed
    assert DENIED not in r.stderr and r.returncode == 0
    assert [x for x in strict.audit_lines() if x["rule"] == ["privileged"]][-1]["decision"] == "audit"
    r = strict.docker("create", "--cap-add", "CHOWN", "busybox", "true")
    assert "[dangerous-capability]" in r.stderr
    r = strict.docker("create", "-v", "/srv/secret/db:/db", "busybox", "true")
    assert "[sensitive-mount]" in r.stderr


def test_inflight_limit(strict):
    """Two slow stops in flight: the third lifecycle operation is refused, then allowed again."""
    names = [f"slow-{uuid.uuid4().hex[:6]}x" for _ in range(3)]
    for n in names:
        assert strict.docker("run", "-d", "--name", n, "busybox", "sleep", "600").returncode == 0
    # busybox sleep as PID 1 ignores SIGTERM: each stop takes its full -t
    procs = [subprocess.Popen(["docker", "stop", "-t", "4", n], env=strict.daemon.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in names[:2]]
    time.sleep(1.0)
    r = strict.docker("stop", "-t", "0", names[2])
    assert DENIED in r.stderr and "[inflight-limit]" in r.stderr, r.stderr
    for p in procs:
        p.wait(30)
        assert p.returncode == 0, p.stderr.read()
    r = strict.docker("stop", "-t", "0", names[2])
    assert r.returncode == 0, r.stderr


def test_named_volume_made_earlier_with_bind_is_checked_at_use(strict):
    """A volume bound to /etc (made while volume creation was not checked) cannot be mounted."""
    vol = f"etcvol-{uuid.uuid4().hex[:6]}"
    r = strict.docker("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=/etc", vol)
    assert r.returncode == 0, r.stderr
    r = strict.docker("create", "-v", f"{vol}:/x", "busybox", "true")
    assert DENIED in r.stderr and "[sensitive-mount]" in r.stderr and vol in r.stderr, r.stderr
    r = strict.docker("create", "--mount", f"type=volume,src={vol},dst=/x", "busybox", "true")
    assert DENIED in r.stderr and "[sensitive-mount]" in r.stderr
    r = strict.docker("create", "-v", f"plain-{vol}:/x", "busybox", "true")  # a new, plain volume
    assert r.returncode == 0, r.stderr


def test_containers_made_before_dockguard_cannot_be_used_as_a_back_door(daemon_factory):
    """A daemon that ran unguarded has a host-network container and one binding /etc; once
    dockguard guards it, joining the first or inheriting the second's volumes is refused."""
    from dockguard.harness.plugin import PluginProcess
    d = daemon_factory()
    assert d.docker("create", "--name", "hostnetc", "--net", "host", "busybox", "sleep", "600").returncode == 0
    assert d.docker("create", "--name", "etcc", "-v", "/etc:/x", "busybox", "true").returncode == 0
    assert d.docker("create", "--name", "plainc", "busybox", "true").returncode == 0
    name = "dg-test-late-" + d.base.name
    p = PluginProcess(name, docker_host=d.host, log_path=d.base / "plugin.log", plugin_dir=d.plugin_dir)
    p.start()
    try:
        d.authz_plugins = [name]
        d.restart()
        r = d.docker("create", "--net", "container:hostnetc", "busybox", "true")
        assert DENIED in r.stderr and "[host-namespace]" in r.stderr and "hostnetc" in r.stderr, r.stderr
        r = d.docker("create", "--volumes-from", "etcc", "busybox", "true")
        assert DENIED in r.stderr and "[sensitive-mount]" in r.stderr and "/etc" in r.stderr, r.stderr
        r = d.docker("create", "--volumes-from", "plainc", "busybox", "true")
        assert r.returncode == 0, r.stderr
    finally:
        d.stop()
        p.stop()


def test_form_body_smuggled_behind_a_second_content_type(guarded):
    """Go parses the form by the first Content-Type; dockerd shows the plugin the last. The
    name in the body would win over the query's: the plugin must not judge the query alone."""
    victim = guarded.docker("create", "busybox", "true").stdout.strip()
    other = f"sm-{uuid.uuid4().hex[:6]}x"
    assert guarded.docker("create", "--name", other, "busybox", "true").returncode == 0
    body = f"name={victim[:8]}"
    status, text = raw(guarded.daemon.socket, "POST", f"/v1.41/containers/{other}/rename?name=benign{other}",
                       body, content_type=None,
                       headers=["Content-Type: application/x-www-form-urlencoded", "Content-Type: application/json"])
    assert status == 403 and "[malformed-request]" in text, text
    assert guarded.docker("inspect", "-f", "{{.Name}}", other).stdout.strip() == f"/{other}"
