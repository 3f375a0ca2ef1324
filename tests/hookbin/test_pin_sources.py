"""Bind sources that vanish or change between dockerd's preparation, the runtime's pinning and
runc's mount: each is the runtime's clear refusal naming the source, never a raw runc error
about a staging path, and config.json never names a staging path that was not mounted.

The root cause measured here: the kernel refuses to bind a directory (or file) whose name was
removed (`rmdir` after it was opened), with ENOENT, also from a staging mount of it. So a
source removed after the wrapper staged it made runc's own mount of the staging path fail
(`mount /run/dockguard/pins/N:/y ... no such file or directory`); the wrapper now runs runc
as its child for containers with binds and, when runc fails, says which source was removed."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hookbin import hostpath, judge

from . import ociconfigs
from .ociconfigs import ID

REPO = str(Path(__file__).parents[2])
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")


def _bind(c, src, dest="/x"):
    c["mounts"].append({"destination": dest, "type": "bind", "source": str(src), "options": ["rbind", "rprivate"]})


def _bundle(tmp_path, *sources):
    root = tmp_path / "root"
    (root / "containers").mkdir(parents=True, exist_ok=True)
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)

    def change(c):
        for n, src in enumerate(sources):
            _bind(c, src, f"/x{n}")
    (bundle / "config.json").write_text(json.dumps(ociconfigs.config(change, root=root)))
    return root, bundle


def _child(body: str) -> dict:
    """Run `body` in a fresh Python (check_bundle leaves for a mount namespace of its own);
    it prints one JSON document."""
    code = f"import json, os, sys\nsys.path.insert(0, {REPO!r})\nfrom hookbin import hostpath, judge\n" + textwrap.dedent(body)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_a_missing_source_and_a_dangling_symlink_are_refused_naming_them(tmp_path):
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    for src in (tmp_path / "gone", dangling):
        root, bundle = _bundle(tmp_path, src)
        before = (bundle / "config.json").read_text()
        out = _child(f"""
        try:
            judge.check_bundle({str(bundle)!r}, {str(root)!r}, {ID!r}, None)
            print(json.dumps({{"refused": None}}))
        except judge.Refused as exc:
            print(json.dumps({{"refused": str(exc)}}))
        """)
        assert out["refused"].startswith(f"refused: bind source {src} for /x0 does not exist"), out
        assert "Safely:" in out["refused"]
        assert (bundle / "config.json").read_text() == before, "config.json names no staging path"


def test_the_kernel_will_not_bind_a_removed_directory_even_from_its_staging_mount(tmp_path):
    """The root cause: staged while it existed, then removed: a bind of the staging path (what
    runc init does) fails with ENOENT, and the pin says it was removed."""
    src = tmp_path / "y"
    src.mkdir()
    root, bundle = _bundle(tmp_path, src)
    out = _child(f"""
    from dockguard import util
    staged = []
    judge.check_bundle({str(bundle)!r}, {str(root)!r}, {ID!r}, None, staged=staged)
    s = staged[0]
    before = hostpath.removed(s.pinned)
    os.rmdir({str(src)!r})
    target = {str(tmp_path / "target")!r}
    os.mkdir(target)
    ret = util.libc().mount(s.path.encode(), target.encode(), None, hostpath.MS_BIND | hostpath.MS_REC, None)
    import ctypes
    err = ctypes.get_errno() if ret else 0
    print(json.dumps({{"path": s.path, "before": before, "after": hostpath.removed(s.pinned),
                      "errno": err, "why": judge.explain_failure(staged, None)}}))
    """)
    assert out["path"].startswith(hostpath.STAGE_DIR + "/")
    assert out["before"] is False and out["after"] is True
    assert out["errno"] == 2, "the kernel binds a removed directory after all: revisit the runtime's watch"
    assert out["why"].startswith(f"refused: bind source {src} for /x0 was removed after it was judged"), out
    assert "Safely:" in out["why"]


def test_a_source_removed_between_pinning_and_staging_is_refused_naming_it(tmp_path):
    src = tmp_path / "y"
    src.mkdir()
    root, bundle = _bundle(tmp_path, src)
    before = (bundle / "config.json").read_text()
    out = _child(f"""
    real = hostpath.stage_dir
    def stage_dir():
        os.rmdir({str(src)!r})  # after the pin and the judgement, before the staging bind
        return real()
    hostpath.stage_dir = stage_dir
    try:
        judge.check_bundle({str(bundle)!r}, {str(root)!r}, {ID!r}, None)
        print(json.dumps({{"refused": None}}))
    except judge.Refused as exc:
        print(json.dumps({{"refused": str(exc)}}))
    """)
    assert out["refused"] and out["refused"].startswith(
        f"refused: bind source {src} for /x0 was removed after it was judged"), out
    assert (bundle / "config.json").read_text() == before


def test_a_source_replaced_after_staging_keeps_the_judged_object(tmp_path):
    """Swapped for a symlink to /etc after staging: the staging path still shows the judged
    (now removed) directory, never /etc, and the watch names the source."""
    src = tmp_path / "y"
    src.mkdir()
    (src / "mine").write_text("1")
    root, bundle = _bundle(tmp_path, src)
    out = _child(f"""
    staged = []
    judge.check_bundle({str(bundle)!r}, {str(root)!r}, {ID!r}, None, staged=staged)
    os.unlink({str(src / "mine")!r}); os.rmdir({str(src)!r}); os.symlink("/etc", {str(src)!r})
    print(json.dumps({{"listing": os.listdir(staged[0].path),
                      "why": judge.explain_failure(staged, None)}}))
    """)
    assert out["listing"] == [], "the staging path shows the judged directory, not /etc"
    assert "was removed after it was judged" in out["why"]


def test_a_staging_directory_removed_on_the_host_is_named(tmp_path):
    """rmdir of /run/dockguard/pins on the host detaches the staging tmpfs in the wrapper's
    namespace too (measured on 6.x): runc's mount then fails; the wrapper says why."""
    src = tmp_path / "y"
    src.mkdir()
    root, bundle = _bundle(tmp_path, src)
    out = _child(f"""
    from dockguard import util
    staged = []
    judge.check_bundle({str(bundle)!r}, {str(root)!r}, {ID!r}, None, staged=staged)
    util.check_errno(util.libc().umount2(hostpath.STAGE_DIR.encode(), 2), "detach")  # MNT_DETACH
    print(json.dumps({{"why": judge.explain_failure(staged, None)}}))
    """)
    assert out["why"].startswith(f"not started: the staging of bind source {src} for /x0 "), out
    assert "vanished while runc ran" in out["why"] and "Safely:" in out["why"]


def test_fifos_sockets_and_files_are_staged_as_the_very_object(tmp_path):
    fifo, sock, plain = tmp_path / "fifo", tmp_path / "sock", tmp_path / "plain"
    os.mkfifo(fifo)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock))
    plain.write_text("x")
    root, bundle = _bundle(tmp_path, fifo, sock, plain)
    out = _child(f"""
    staged = []
    n = judge.check_bundle({str(bundle)!r}, {str(root)!r}, {ID!r}, None, staged=staged)
    c = json.load(open({str(bundle / "config.json")!r}))
    named = [m["source"] for m in c["mounts"][-3:]]
    ids = [[os.lstat(p).st_dev, os.lstat(p).st_ino, os.lstat(p).st_mode] for p in named]
    print(json.dumps({{"n": n, "named": named, "ids": ids, "why": judge.explain_failure(staged, None)}}))
    """)
    s.close()
    want = [[os.lstat(p).st_dev, os.lstat(p).st_ino, os.lstat(p).st_mode] for p in (fifo, sock, plain)]
    assert out["n"] == 3 and all(p.startswith(hostpath.STAGE_DIR + "/") for p in out["named"])
    assert out["ids"] == want and out["why"] is None


def test_explain_failure_names_the_source_behind_a_staging_path_in_runcs_error(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    pins = tmp_path / "pins"  # stands for STAGE_DIR: staged paths that exist
    (pins / "7").mkdir(parents=True)
    (pins / "1").mkdir()
    fd = os.open(d, os.O_PATH | os.O_CLOEXEC)
    try:
        p = hostpath.Pinned(str(d), fd, str(d), os.fstat(fd), 0)
        staged = [judge.Staged(7, str(d), "/y", f"{pins}/7", p)]
        err = f"mount {pins}/7:/y (via /proc/self/fd/6), flags: 0x5000: not a directory"
        why = judge.explain_failure(staged, err)
        assert why.startswith(f"refused: bind source {d} for /y could not be mounted by runc "
                              f"(staged as {pins}/7): {err}")
        assert judge.explain_failure(staged, "unrelated: exec format error") is None
        assert judge.explain_failure([judge.Staged(1, str(d), "/y", f"{pins}/1", p)],
                                     err) is None, "pins/1 is not pins/7"
    finally:
        os.close(fd)


FAKE_RUNC = """#!/bin/sh
# a runc that removes the source before "mounting" it, and fails as runc 1.1.5 then does
for a; do last="$a"; done
rmdir {src}
echo '{{"level":"error","msg":"runc create failed: mount {pin}:/x0 (via /proc/self/fd/6), flags: 0x5000: no such file or directory","time":"t"}}' >> {log}
exit 1
"""


def _wrapper(tmp_path, runc_body: str, src: Path):
    root, bundle = _bundle(tmp_path, src)
    log = tmp_path / "log.json"
    runc = tmp_path / "runc"
    runc.write_text(runc_body.format(src=src, pin=f"{hostpath.STAGE_DIR}/{len(ociconfigs.BENIGN['mounts'])}", log=log))
    runc.chmod(0o755)
    res = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {REPO!r}); "
                          "from hookbin import runtime; sys.exit(runtime.main())",
                          "--runc", str(runc), "--docker-root", str(root), "--log", str(log),
                          "--log-format", "json", "create", "--bundle", str(bundle), ID],
                         capture_output=True, text=True, timeout=60)
    lines = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    return res, lines


def test_the_wrapper_explains_runcs_failure_on_a_source_removed_after_staging(tmp_path):
    src = tmp_path / "y"
    src.mkdir()
    res, lines = _wrapper(tmp_path, FAKE_RUNC, src)
    assert res.returncode == 1
    errors = [r["msg"] for r in lines if r["level"] == "error"]
    assert len(errors) == 2 and "pins" in errors[0]
    assert errors[-1].startswith(f"dockguard-runtime: refused: bind source {src} for /x0 was removed after it was judged"), errors
    assert hostpath.STAGE_DIR not in errors[-1]


def test_the_wrapper_passes_runcs_status_and_adds_nothing_when_runc_succeeds(tmp_path):
    src = tmp_path / "y"
    src.mkdir()
    ok = "#!/bin/sh\nexit 0\n"
    res, lines = _wrapper(tmp_path, ok, src)
    assert res.returncode == 0, res.stderr
    assert not [r for r in lines if r["level"] == "error"]
    fails = "#!/bin/sh\necho '{{\"level\":\"error\",\"msg\":\"something else\",\"time\":\"t\"}}' >> {log}\nexit 3\n"
    res, lines = _wrapper(tmp_path, fails, src)
    assert res.returncode == 3 and [r["msg"] for r in lines if r["level"] == "error"] == ["something else"]
