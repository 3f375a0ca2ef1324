"""Differential test (issue 9): generated create requests sent raw to an unguarded private
dockerd and to a guarded one.

- A container the guarded daemon created whose *inspected* HostConfig breaks a rule is a
  BYPASS: the test fails.
- A request the unguarded daemon turned into a harmless container but the guarded one
  refused is a false denial: collected; the kinds README lists as deliberate strictness
  are expected, any other fails the test.
- The model of dockerd (tests/dockerd_model.py) is checked too: where it says dockerd
  refuses, dockerd refuses, and where it says what dockerd applies, the inspected
  HostConfig breaks the same rules.

Bounded in CI: DOCKGUARD_DIFF_REQUESTS (default 120) requests from DOCKGUARD_DIFF_SEED
(default 9). Findings are printed as JSON; DOCKGUARD_DIFF_RECORD=1 writes each into
tests/corpus/differential/, whose entries `test_corpus_replay` sends again every run.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import socket
from pathlib import Path

import pytest

from tests import dockerd_model as model
from tests.creategen import RandomChooser, Request, gen_create

from .rawapi import _dechunk, raw

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "differential"
N = int(os.environ.get("DOCKGUARD_DIFF_REQUESTS", "120"))
SEED = int(os.environ.get("DOCKGUARD_DIFF_SEED", "9"))
RECORD = os.environ.get("DOCKGUARD_DIFF_RECORD") == "1"
REPORT = os.environ.get("DOCKGUARD_DIFF_REPORT")  # a file to write the figures to


def send(sock, req: Request) -> tuple[int, str]:
    """The request exactly as generated: Content-Length, or one chunk (Go then drops the
    Transfer-Encoding header and shows no length)."""
    body = req.body.encode("utf-8")
    if req.transfer != "chunked":
        return raw(sock, "POST", req.target, body)
    head = [f"POST {req.target} HTTP/1.1", "Host: docker", "Connection: close",
            "Content-Type: application/json", "Transfer-Encoding: chunked"]
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(str(sock))
        s.sendall(data)
        resp = b""
        while part := s.recv(65536):
            resp += part
    header, _, payload = resp.partition(b"\r\n\r\n")
    if b"Transfer-Encoding: chunked" in header:
        payload = _dechunk(payload)
    return int(header.split(b" ", 2)[1]), payload.decode(errors="replace")


BASELINE = Request("/v1.41/containers/create", '{"Image": "busybox", "Cmd": ["true"]}')
# dockerd adds it to a container sharing the host's pid/ipc or privileged one by itself
DAEMON_ADDED = "securityopt label=disable"


def outcome(sock, req: Request, defaults: frozenset = frozenset()) -> dict:
    """Status, message and, for a created container, what its inspected HostConfig breaks
    beyond the daemon's own defaults (the container is removed again)."""
    status, text = send(sock, req)
    out = {"status": status, "msg": text.strip()[:400], "violations": None}
    if status == 201:
        cid = json.loads(text)["Id"]
        st, info = raw(sock, "GET", f"/containers/{cid}/json")
        assert st == 200, info
        hc = json.loads(info)["HostConfig"]
        v = [x for x in model.violations(hc) if x not in defaults]
        out["violations"] = [x for x in v if x != DAEMON_ADDED or len(v) == 1]
        st, info = raw(sock, "DELETE", f"/containers/{cid}", headers=["Content-Length: 0"])
        assert st == 204, info
    return out


def defaults_of(sock) -> frozenset:
    """What a plain `docker create busybox true` already shows (e.g. CgroupnsMode host on
    20.10): the daemon's defaults, not the request's doing."""
    return frozenset(outcome(sock, BASELINE)["violations"] or ())


def go_new(daemon) -> bool:
    """Go >= 1.21 folds keys differently (tests/dockerd_model.py)."""
    v = daemon.version().get("GoVersion", "go1.0").removeprefix("go")
    parts = [int(x) for x in v.split(".")[:2] if x.isdigit()]
    return tuple(parts) >= (1, 21)


def expected_strictness(req: Request, guarded: dict) -> str | None:
    """Why refusing this harmless request is deliberate (README "Stricter than dockerd"), or None."""
    msg = guarded["msg"]
    if "ambiguous key" in msg:
        return "a key holding K, ı or İ, refused as ambiguous"
    if req.transfer == "chunked" and "[malformed-request]" in msg:
        return "a chunked body: dockerd does not show it to the plugin"
    if ("[dangerous-capability]" in msg and re.search(r'(?i)"cap\w*d"\s*:\s*"', req.body)
            and re.search(r'(?i)"cap\w*d"\s*:\s*null', req.body)):
        return "CapAdd given as a string, then null: still read (null keeps a string)"
    return None


def judge(req: Request, plain: dict, guarded: dict, go_is_new: bool) -> list[dict]:
    """The findings of one request (empty: the guard and the model agree with dockerd)."""
    found = []
    base = {"request": req.to_json(), "plain": plain, "guarded": guarded}
    if guarded["violations"]:
        found.append({"kind": "bypass", **base})
    if plain["violations"] == [] and guarded["status"] == 403:
        why = expected_strictness(req, guarded)
        found.append({"kind": "false-denial", "expected": why, **base})
    # the model against the real thing
    try:
        model.route("POST", req.target)
        predicted = model.decode_create(req.body.encode("utf-8"), go_is_new)
    except model.NoHandler:
        predicted = "no handler"
    except model.GoError as exc:
        predicted = f"400: {exc}"
    if isinstance(predicted, str):
        if plain["status"] == 201:
            found.append({"kind": "model", "predicted": predicted, **base})
    elif plain["status"] == 201 and req.transfer == "length":
        want = model.violations(predicted.host_config)
        if sorted(want) != sorted(plain["violations"]):
            found.append({"kind": "model", "predicted": want, **base})
    return found


def record(finding: dict) -> Path:
    text = json.dumps(finding, indent=1, ensure_ascii=False, sort_keys=True)
    key = hashlib.sha256(json.dumps(finding["request"], sort_keys=True).encode()).hexdigest()[:12]
    path = CORPUS / f"{finding['kind']}-{key}.json"
    path.write_text(text + "\n")
    return path


def run(plain_daemon, guarded, requests: list[Request]) -> dict:
    go_is_new = go_new(plain_daemon)
    stats = {"engine": plain_daemon.version().get("Version"), "go": plain_daemon.version().get("GoVersion"),
             "requests": 0, "created_plain": 0, "created_guarded": 0, "denied": 0, "refused_by_dockerd": 0,
             "harmful_plain": 0, "findings": []}
    dp, dg = defaults_of(plain_daemon.socket), defaults_of(guarded.daemon.socket)
    stats["daemon_defaults"] = sorted(dp | dg)
    for req in requests:
        plain = outcome(plain_daemon.socket, req, dp)
        g = outcome(guarded.daemon.socket, req, dg)
        stats["requests"] += 1
        stats["created_plain"] += plain["status"] == 201
        stats["created_guarded"] += g["status"] == 201
        stats["denied"] += g["status"] == 403
        stats["refused_by_dockerd"] += plain["status"] != 201
        stats.setdefault("plain_status", {}).setdefault(str(plain["status"]), 0)
        stats["plain_status"][str(plain["status"])] += 1
        stats["harmful_plain"] += bool(plain["violations"])
        stats["findings"] += judge(req, plain, g, go_is_new)
        stats["last"] = (plain, g)
    for sock in (plain_daemon.socket, guarded.daemon.socket):  # the generator's named volume
        raw(sock, "DELETE", "/volumes/dgfuzzvol", headers=["Content-Length: 0"])
    return stats


def summarise(stats: dict) -> str:
    kinds: dict[str, int] = {}
    for f in stats["findings"]:
        k = f["kind"] + ("" if f["kind"] != "false-denial" else (f" (expected: {f['expected']})" if f["expected"] else " (unexpected)"))
        kinds[k] = kinds.get(k, 0) + 1
    return json.dumps({k: v for k, v in stats.items() if k not in ("findings", "last")} | {"findings": kinds})


def _fail_on(stats: dict) -> None:
    bad = [f for f in stats["findings"]
           if f["kind"] in ("bypass", "model") or (f["kind"] == "false-denial" and not f["expected"])]
    for f in stats["findings"]:
        if RECORD and f in bad:
            record(f)
    if REPORT:
        with open(REPORT, "a") as fh:
            fh.write(summarise(stats) + "\n")
    print(summarise(stats))
    assert not bad, "\n".join(json.dumps(f, ensure_ascii=False) for f in bad[:10])


@pytest.mark.docker
def test_generated_creates(plain_daemon, guarded):
    rng = random.Random(SEED)
    requests = [gen_create(RandomChooser(rng)) for _ in range(N)]
    stats = run(plain_daemon, guarded, requests)
    assert stats["requests"] == N and stats["harmful_plain"] > 0 and stats["created_guarded"] > 0, summarise(stats)
    _fail_on(stats)


def corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.json"))


@pytest.mark.docker
@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.stem)
def test_corpus_replay(plain_daemon, guarded, path):
    """Every finding ever kept: sent again to both daemons, judged afresh."""
    entry = json.loads(path.read_text())
    r = entry["request"]
    req = Request(r["target"], r["body"], r.get("transfer", "length"), r.get("notes", []))
    stats = run(plain_daemon, guarded, [req])
    _fail_on(stats)
    plain, g = stats["last"]
    if entry["kind"] == "bypass":  # dockerd really applies it, and the guard refuses it
        assert plain["violations"], (path.name, plain)
        assert g["status"] == 403, (path.name, g)
    elif entry["kind"] == "harmless":  # created by both daemons
        assert plain["violations"] == [] and g["status"] == 201, (path.name, plain, g)
    elif entry["kind"] == "strict":  # harmless, refused as README's deliberate strictness says
        assert plain["violations"] == [] and g["status"] == 403, (path.name, plain, g)
        assert expected_strictness(req, g), (path.name, g)
