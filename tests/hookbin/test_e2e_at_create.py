"""With the authz plugin in front, an invalid hook-spec is refused already at `docker create`
(not only when runc creates the container at start), with the fault named, and no container
is left behind: the plugin validates with hookbin's own code."""
from __future__ import annotations

import json
import os
import uuid

import pytest

from hookbin import spec as hs
from .test_e2e_hooks import INVALID

DENIED = "authorization denied by plugin"


pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def hooks_ready(guarded_hooks):
    guarded = guarded_hooks.g
    guarded.specs = guarded_hooks.specs
    root = guarded.daemon.data_root
    hooks = root / "hooks"
    hooks.mkdir(exist_ok=True)
    os.chmod(hooks, 0o755)
    for p, mode in ((hooks / "record", 0o755), (hooks / "noexec", 0o644), (root / "hooksX" / "record", 0o755)):
        p.parent.mkdir(exist_ok=True)
        p.write_text("#!/bin/sh\nexit 0\n")
        os.chmod(p, mode)
    if not os.path.lexists(hooks / "escape"):
        os.symlink("/bin/true", hooks / "escape")
    return guarded


def count(g) -> int:
    return len(g.docker("ps", "-aq").stdout.split())


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_spec_refused_at_docker_create(hooks_ready, case):
    g = hooks_ready
    root, hooks = g.daemon.data_root, g.daemon.data_root / "hooks"
    over, fault = INVALID[case]
    h = {"path": str(hooks / "record"), "args": ["record"], "env": [], "timeout": 5}
    for key, value in over.items():
        if value is None:
            del h[key]
        elif isinstance(value, str) and value.startswith("@hooks/"):
            h[key] = str(hooks / value[len("@hooks/"):])
        elif isinstance(value, str) and value.startswith("@root/"):
            h[key] = str(root / value[len("@root/"):])
        else:
            h[key] = value
    spec = g.specs / f"bad-{uuid.uuid4().hex[:6]}.json"
    spec.write_text(json.dumps({"prestart": [h]}))
    before = count(g)
    res = g.docker("create", "--label", f"{hs.LABEL}={spec}", "busybox", "true")
    assert res.returncode != 0
    assert DENIED in res.stderr and "[hook-spec]" in res.stderr, res.stderr
    assert fault in res.stderr, res.stderr
    assert count(g) == before, "a container was left behind"


def test_bad_json_refused_at_docker_create(hooks_ready):
    g = hooks_ready
    path = g.specs / "badjson.json"
    path.write_text('{"prestart": [\n  {"path": "/x" "args": []}\n]}\n')
    res = g.docker("create", "--label", f"{hs.LABEL}={path}", "busybox", "true")
    assert DENIED in res.stderr and f"{path}:2:17: invalid JSON" in res.stderr, res.stderr


def test_valid_spec_is_allowed_at_create(hooks_ready):
    g = hooks_ready
    path = g.specs / "good.json"
    path.write_text(json.dumps({"prestart": [{"path": str(g.daemon.data_root / "hooks" / "record"),
                                              "args": ["record"], "env": [], "timeout": 5}]}))
    res = g.docker("create", "--label", f"{hs.LABEL}={path}", "busybox", "true")
    assert res.returncode == 0, res.stderr
