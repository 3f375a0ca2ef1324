"""Issue 9: a new named volume is not refused because dockerd's volume lookup is slow.

For a name it does not know, dockerd's GET /volumes/NAME (and its list, with any filter)
first discovers every legacy plugin in its plugin directories; a dead socket there makes that
~15 s on 20.10 and 26, past the plugin's 10 s lookup timeout, and `docker run -v NEWVOL:/x`
was refused. The context now asks dockerd only about a volume that may exist (authz/context.py
`volume_may_exist`). Here, with dead sockets in the daemon's private plugin directory: the raw
lookup still takes that long (the fault is in effect), a new volume is allowed, and a local
o=bind /etc volume made while the rule was off is still refused. (`docker run -v NEWVOL:/x`
itself still takes ~15 s: dockerd's own create of a driverless volume probes the plugins too;
not ours to fix, and no timeout of ours is involved.)
"""
from __future__ import annotations

import socket
import time
import uuid

import pytest

DENIED = "authorization denied by plugin"
LOOKUP_TIMEOUT = 10.0  # the default policy's lookup_timeout_seconds


def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ok(res):
    assert DENIED not in res.stderr, res.stderr
    assert res.returncode == 0, res.stderr
    return res.stdout


def dead_socket(path):
    """A unix socket file nobody listens on: connecting is refused, as after a plugin died."""
    path.parent.mkdir(parents=True, exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()


@pytest.fixture(scope="module")
def stale(guarded_factory, tmp_path_factory):
    """A guarded daemon holding a local o=bind /etc volume (made with the
    sensitive-mount and sensitive-volume rules off),
    its plugin then restarted with the default policy, and dead legacy plugin sockets (flat
    and in the per-plugin directory form) in the daemon's private /run/docker/plugins."""
    pol = tmp_path_factory.mktemp("vlpol") / "off.toml"
    pol.write_text('[rules]\nsensitive-mount = "off"\nsensitive-volume = "off"\n')
    g = guarded_factory(policy=str(pol))
    bad = uniq("etcvol")
    ok(g.docker("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=/etc", bad))
    g.plugin.stop()
    g.plugin.policy = None
    g.plugin.start()
    dead_socket(g.daemon.plugin_dir / "deadvol.sock")
    dead_socket(g.daemon.plugin_dir / "deadvol2" / "deadvol2.sock")
    return g, bad


def timed(g, *args):
    t0 = time.monotonic()
    res = g.docker(*args)
    return res, time.monotonic() - t0


def test_the_fault_is_in_effect(stale):
    """dockerd's own lookup of an unknown name waits on discovery past the lookup timeout."""
    g, _ = stale
    t0 = time.monotonic()
    code, _ = g.daemon.api("GET", f"/volumes/{uniq('nosuch')}", timeout=120)
    took = time.monotonic() - t0
    print(f"GET /volumes/<unknown> with dead plugin sockets: {code} in {took:.2f} s")
    assert code == 404
    assert took > LOOKUP_TIMEOUT


def test_a_new_volume_is_allowed(stale):
    g, _ = stale
    new = uniq("newvol")
    res, took = timed(g, "run", "--rm", "-v", f"{new}:/x", "busybox", "true")
    print(f"docker run -v NEWVOL:/x: {took:.2f} s")
    ok(res)
    res, took = timed(g, "run", "--rm", "--mount", f"type=volume,src={uniq('newmnt')},dst=/x,volume-driver=local",
                      "busybox", "true")
    print(f"docker run --mount type=volume,src=NEW,volume-driver=local: {took:.2f} s")
    ok(res)
    # the volume now exists (looked up, fast: its driver is recorded) and is used again
    res, took = timed(g, "run", "--rm", "-v", f"{new}:/x", "busybox", "true")
    print(f"docker run -v EXISTING-PLAIN:/x: {took:.2f} s")
    ok(res)


def test_an_existing_bad_volume_is_still_refused(stale):
    g, bad = stale
    for args in (["-v", f"{bad}:/x"], ["--mount", f"type=volume,src={bad},dst=/x"]):
        res, took = timed(g, "run", "--rm", *args, "busybox", "cat", "/x/hostname")
        print(f"docker run {args[0]} EXISTING-O=BIND-/etc: {took:.2f} s")
        assert res.returncode != 0, res.stdout
        assert DENIED in res.stderr and "[sensitive-mount]" in res.stderr, res.stderr
        assert f"volume {bad}" in res.stderr and "/etc" in res.stderr, res.stderr
        assert "could not look up" not in res.stderr, res.stderr


def test_the_fast_answer_matches_the_daemons_root(stale):
    """What `volume_may_exist` reads is where this engine keeps it: the local volume's
    directory and its name in metadata.db; a new name is answered without asking."""
    from authz.context import DaemonClient
    g, bad = stale
    vols = g.daemon.data_root / "volumes"
    assert (vols / bad).is_dir()
    assert bad.encode() in (vols / "metadata.db").read_bytes()
    d = DaemonClient(base_url=g.daemon.host, timeout=60)
    assert d.volume_may_exist(bad)
    t0 = time.monotonic()
    assert d.volume(uniq("nosuch")) is None
    print(f"DaemonClient.volume(<unknown>): {time.monotonic() - t0:.3f} s")
    assert (d.volume(bad) or {}).get("Options", {}).get("device") == "/etc"
