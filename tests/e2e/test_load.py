"""Load (issue 9), bounded for CI: many concurrent API clients mixing reads with
create/start/stop/rm against a guarded private dockerd. Every request gets its normal answer
or the in-flight rule's clean denial; none errors, none hangs. No wall-clock limits: the
hang timeout only tells a hang from an answer. The full run is bench/load_authz.py."""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "load_authz", Path(__file__).resolve().parents[2] / "bench" / "load_authz.py")
load = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = load  # dataclasses look their module up
_spec.loader.exec_module(load)


@pytest.mark.parametrize("status, body, want", [
    (201, b"", "answered"), (304, b"", "answered"), (None, b"", "lost"),
    (403, b'{"message":"authorization denied by plugin x: dockguard: [inflight-limit] 20 ..."}', "denied"),
    (403, b'{"message":"authorization denied by plugin x: dockguard: [privileged] ..."}', "errored"),
    (500, b"plugin failed", "errored"), (409, b"conflict", "errored"),
])
def test_classify(status, body, want):
    assert load.classify("create" if status != 304 else "stop", status, body) == want


def test_concurrent_clients_answered_or_cleanly_denied(guarded_factory, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text("[limits]\nmax_inflight = 20\n")  # low, so the in-flight rule is exercised
    g = guarded_factory(policy=str(policy))
    args = argparse.Namespace(clients=200, cycles=1, reads=3, hang_timeout=600.0)
    load.raise_fd_limit(4 * args.clients + 256)
    tally, wall = asyncio.run(load.run_load(str(g.daemon.socket), args, "busybox:latest", "ld"))
    print(f"\n{args.clients} clients, {wall:.1f} s\n" + load.table({"dockguard": (tally, wall)}))

    assert tally.counts["errored"] == 0 and tally.counts["lost"] == 0, tally.examples
    assert tally.sent == tally.counts["answered"] + tally.counts["denied"]
    assert tally.sent >= args.clients * (args.reads + 1)
    # every denial was the in-flight rule's, and the plugin's audit says the same
    denied = [r for r in g.audit_lines() if r["decision"] == "deny"]
    assert all(r["rule"] == ["inflight-limit"] for r in denied), denied[:3]
    assert len(denied) == tally.counts["denied"]
    # every container made was removed, and no in-flight count leaked: a run still works
    assert g.docker("ps", "-aq", "--filter", "name=ld").stdout.split() == []
    r = g.docker("run", "--rm", "busybox:latest", "true")
    assert r.returncode == 0, r.stderr
    assert g.docker("ps").returncode == 0
