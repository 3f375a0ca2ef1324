"""plugin-privileges (pull/upgrade/create/set), plugin-self-protect."""
from __future__ import annotations

import pytest

from .helpers import allowed, decide, denied_by, problems

PULL = "/v1.41/plugins/pull?remote=example/p:latest&name=p"
UPGRADE = "/v1.41/plugins/p/upgrade?remote=example/p:2"


def priv(name, *values):
    return {"Name": name, "Description": "", "Value": list(values)}


@pytest.mark.parametrize("uri", [PULL, UPGRADE])
@pytest.mark.parametrize("item,what", [
    (priv("network", "host"), "network: host"),
    (priv("Network", "HOST"), "network: HOST"),
    (priv("mount", "/etc"), "mount /etc"),
    (priv("mount", "//var/lib/docker/"), "mount //var/lib/docker/"),
    (priv("mount", "/var"), "mount /var"),
    (priv("device", "/dev/fuse"), "device: /dev/fuse"),
    (priv("allow-all-devices", "true"), "allow-all-devices: true"),
    (priv("host pid", "true"), "host pid: true"),
    (priv("host ipc", "true"), "host ipc: true"),
    (priv("capabilities", "CAP_SYS_ADMIN"), "capability CAP_SYS_ADMIN"),
    (priv("capabilities", "cap_net_admin"), "capability cap_net_admin"),
    (priv("capabilities", "ALL"), "capability ALL"),
])
def test_plugin_privileges_denied(uri, item, what):
    out = decide("POST", uri, [priv("network", "bridge"), item], plugins={"p": {"Config": {}}})
    assert what in denied_by(out, "plugin-privileges")


@pytest.mark.parametrize("items", [
    [], [priv("network", "bridge")], [priv("network", "none")], [priv("mount", "/srv/plugin-data")],
    [priv("capabilities", "CAP_CHOWN")], [priv("mount", "/etcetera")],
])
def test_plugin_privileges_benign(items):
    allowed(decide("POST", PULL, items))


def test_plugin_privileges_folded_keys():
    out = decide("POST", PULL, '[{"NAME":"network","vALUE":["host"]}]')
    denied_by(out, "plugin-privileges")
    out = decide("POST", PULL, '[{"Name":"network","Value":["bridge"]},{"Name":"network","Value":["host"]}]')
    denied_by(out, "plugin-privileges")


@pytest.mark.parametrize("body,what", [
    ({"Name": "network"}, "plugin privileges must be a JSON list"),
    ([1], "each plugin privilege must be an object"),
    ([{"Name": 5}], "must be a string"),
    ([{"Name": "network", "Value": "host"}], "must be a list of strings"),
])
def test_plugin_privileges_malformed(body, what):
    assert what in denied_by(decide("POST", PULL, body), "malformed-request")


def test_plugin_create_is_always_flagged():
    msg = denied_by(decide("POST", "/plugins/create?name=x", b"tar-bytes",
                           headers={"Content-Type": "application/x-tar"}), "plugin-privileges")
    assert "docker plugin create" in msg


@pytest.mark.parametrize("kv,what", [
    ("mymount.source=/etc", "/etc"), ("data.source=//var/run/docker.sock", "/var/run/docker.sock"),
    ("dev.path=/dev", "/dev"), ("M.SOURCE=/root/x", "/root"), ("x.source=/var", "/var)"),
])
def test_plugin_set_sensitive_sources(kv, what):
    msg = denied_by(decide("POST", "/v1.41/plugins/p/set", [kv], plugins={"p": {"Config": {}}}), "plugin-privileges")
    assert f"plugin set {kv} (sensitive: {what}" in msg


@pytest.mark.parametrize("kv", ["DEBUG=1", "mymount.source=/srv/data", "x.source=", "dev.path=/srv/dev", "source=/etc"])
def test_plugin_set_benign(kv):
    allowed(decide("POST", "/plugins/p/set", [kv], plugins={"p": {"Config": {}}}))


def test_plugin_set_symlink_and_malformed():
    denied_by(decide("POST", "/plugins/p/set", ["m.source=/srv/x"], realpaths={"/srv/x": "/etc"},
                     plugins={"p": {}}), "plugin-privileges")
    assert "list of KEY=VALUE strings" in denied_by(decide("POST", "/plugins/p/set", {"a": "b"}), "malformed-request")


# ---- self protection ----

SELF = frozenset({"dg-authz"})
AUTHZ_PLUGIN = {"Name": "other-authz:latest", "Config": {"Interface": {"Types": ["docker.authz/1.0"]}}}
VOL_PLUGIN = {"Name": "vol:latest", "Config": {"Interface": {"Types": ["docker.volumedriver/1.0"]}}}


@pytest.mark.parametrize("method,uri", [
    ("POST", "/plugins/{n}/disable"), ("POST", "/plugins/{n}/disable?force=1"), ("DELETE", "/plugins/{n}"),
    ("DELETE", "/plugins/{n}?force=1"), ("POST", "/plugins/{n}/push"),
])
@pytest.mark.parametrize("n", ["dg-authz", "dg-authz:latest"])
def test_self_by_name(method, uri, n):
    out = decide(method, uri.format(n=n), self_names=SELF)
    assert f"{n} (dockguard itself)" in denied_by(out, "plugin-self-protect")
    assert ("plugin", n) not in out.ctx.calls


def test_self_set_and_upgrade():
    denied_by(decide("POST", "/plugins/dg-authz/set", ["DEBUG=1"], self_names=SELF), "plugin-self-protect")
    denied_by(decide("POST", "/plugins/dg-authz/upgrade?remote=x", [], self_names=SELF), "plugin-self-protect")


def test_any_authz_plugin_is_protected():
    plugins = {"other-authz": AUTHZ_PLUGIN, "vol": VOL_PLUGIN}
    msg = denied_by(decide("POST", "/plugins/other-authz/disable", plugins=plugins), "plugin-self-protect")
    assert "other-authz (an authorization plugin)" in msg
    allowed(decide("POST", "/plugins/vol/disable", plugins=plugins))
    allowed(decide("DELETE", "/plugins/vol", plugins=plugins))
    allowed(decide("POST", "/plugins/nosuch/disable", plugins=plugins))  # dockerd: 404
    allowed(decide("POST", "/plugins/odd/disable", plugins={"odd": {}}))
    assert problems("plugin-self-protect", "POST", "/plugins/other-authz/disable",
                    plugins=plugins) == ["plugin.disable other-authz (an authorization plugin)"]


def test_self_protect_lookup_failure_denies():
    assert "could not look up" in denied_by(decide("POST", "/plugins/x/disable", fail={"plugin"}),
                                            "plugin-self-protect")
