"""Issue 7, hole 0: root code execution on the host through a container's hook-spec.

The chain the review used: a spec anyone could write (in /tmp, owned by nobody, world-
writable) naming the shipped docker-hooks with "env": ["LD_PRELOAD=/tmp/x/evil.so"], so
the root-owned hook loads the user's library as root. Here a real library is built whose
constructor writes a marker (it works: the control run shows `uid=0`), and every member of
the class is shown refused at `docker create` by the plugin (rule id, "Safely:" hint) with
the marker never written; the same spec carried by an imported image's LABEL is refused at
create, and, with the plugin's rule off, by dockguard-runtime at start (dockerd's
config.v2.json holds the merged labels). Benign twins: granted specs run their hooks.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from dockguard.harness.daemon import busybox_rootfs_tar
from hookbin import spec as hs

pytestmark = pytest.mark.docker

DENIED = "authorization denied by plugin"
EVIL_C = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
    FILE *f = fopen(MARKER, "a");
    if (f) { fprintf(f, "uid=%d\n", (int)getuid()); fclose(f); }
}
"""


class Evil:
    """/tmp/x-like directory anyone can write, holding evil.so; `marker` shows a load."""

    def __init__(self, d: Path):
        self.dir = d
        self.so = d / "evil.so"
        self.marker = d / "marker"

    def spec(self, hooks: Path, name: str = "evil.json", **over) -> str:
        h = {"path": str(hooks / "docker-hooks"), "args": ["docker-hooks", "--state", "prestart"],
             "env": [f"LD_PRELOAD={self.so}"], "timeout": 5}
        h.update(over)
        path = self.dir / name
        path.write_text(json.dumps({"prestart": [h]}))
        os.chown(path, 65534, 65534)
        os.chmod(path, 0o666)
        return str(path)

    def loaded(self) -> bool:
        return self.marker.exists()


@pytest.fixture(scope="module")
def evil():
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the test's LD_PRELOAD library")
    d = Path(tempfile.mkdtemp(prefix="dgx", dir="/tmp"))
    os.chmod(d, 0o777)
    e = Evil(d)
    src = d / "evil.c"
    src.write_text(EVIL_C)
    subprocess.run(["gcc", "-shared", "-fPIC", f'-DMARKER="{e.marker}"', "-o", str(e.so), str(src)], check=True)
    # Control: the library is real, and would have run as root.
    subprocess.run(["/bin/true"], env={"LD_PRELOAD": str(e.so)}, check=True)
    assert e.marker.read_text() == "uid=0\n"
    e.marker.unlink()
    yield e
    shutil.rmtree(d, ignore_errors=True)


def refused_at_create(gh, *args: str) -> str:
    """`docker run` (create, then start) refused by the plugin's hook-spec rule; nothing left."""
    before = gh.count()
    res = gh.docker("run", "--rm", *args, "busybox", "true")
    assert res.returncode != 0
    assert DENIED in res.stderr and "[hook-spec]" in res.stderr and "Safely:" in res.stderr, res.stderr
    assert gh.count() == before, "a container was left behind"
    return res.stderr


def test_the_reported_chain_is_refused_at_create_and_the_library_never_loads(guarded_hooks, evil):
    gh = guarded_hooks
    spec = evil.spec(gh.hooks)
    err = refused_at_create(gh, "--label", f"{hs.LABEL}={spec}")
    assert "must lie in a spec directory the host grants" in err
    assert not evil.loaded()


def test_spec_in_a_directory_owned_by_nobody_is_refused(guarded_hooks, evil):
    gh = guarded_hooks
    theirs = gh.specs / f"theirs-{uuid.uuid4().hex[:6]}"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 65534, 65534)
    spec = theirs / "s.json"
    spec.write_text(json.dumps({"prestart": [{"path": str(gh.hooks / "docker-hooks"),
                                              "args": ["docker-hooks", "--state", "prestart"], "env": []}]}))
    err = refused_at_create(gh, "--label", f"{hs.LABEL}={spec}")
    assert f"{theirs} is owned by uid 65534, not root" in err


def test_granted_spec_with_ld_preload_env_is_refused(guarded_hooks, evil):
    gh = guarded_hooks
    spec = gh.spec("preload-" + uuid.uuid4().hex[:6], prestart=[{
        "path": str(gh.hooks / "docker-hooks"), "args": ["docker-hooks", "--state", "prestart"],
        "env": [f"LD_PRELOAD={evil.so}"], "timeout": 5}])
    err = refused_at_create(gh, "--label", f"{hs.LABEL}={spec}")
    assert "env[0]: LD_PRELOAD is not on the allow-list" in err
    assert not evil.loaded()


def test_docker_hooks_log_outside_the_log_dir_is_refused(guarded_hooks):
    gh = guarded_hooks
    target = f"/etc/dg-never-{uuid.uuid4().hex[:6]}"
    spec = gh.spec("etclog-" + uuid.uuid4().hex[:6], prestart=[{
        "path": str(gh.hooks / "docker-hooks"), "args": ["docker-hooks", "--state", "prestart", "--log", target],
        "env": [], "timeout": 5}])
    err = refused_at_create(gh, "--label", f"{hs.LABEL}={spec}")
    assert f"docker-hooks: log '{target}' must be a file directly in {gh.logs}" in err
    assert not os.path.exists(target)


@pytest.fixture
def spare_link(guarded_hooks):
    """A host interface not listed in the policy (dummy, else one end of a veth)."""
    tag = uuid.uuid4().hex[:6]
    name, peer = f"dgs{tag}", f"dgt{tag}"
    if subprocess.run(guarded_hooks.d.netns_argv("ip", "link", "add", name, "type", "dummy"), capture_output=True).returncode != 0:
        subprocess.run(guarded_hooks.d.netns_argv("ip", "link", "add", name, "type", "veth", "peer", "name", peer), check=True)
    yield name
    for n in (name, peer):
        subprocess.run(guarded_hooks.d.netns_argv("ip", "link", "del", n), capture_output=True)


def link_exists(name: str, daemon) -> bool:
    """Is the link in the daemon's own netns (network-hook's "host"; tests never touch the
    real host's links), or on the host (daemon None)?"""
    argv = daemon.netns_argv("ip", "link", "show", name) if daemon else ["ip", "link", "show", name]
    return subprocess.run(argv, capture_output=True).returncode == 0


def test_network_hook_moving_an_unlisted_interface_is_refused(guarded_hooks, spare_link):
    gh = guarded_hooks
    spec = gh.spec("net-" + spare_link, prestart=[{
        "path": str(gh.hooks / "network-hook"), "args": ["network-hook", spare_link, "eth9"], "env": []}])
    err = refused_at_create(gh, "--network", "none", "--label", f"{hs.LABEL}={spec}")
    assert f"network-hook: {spare_link} is not an interface the policy lets network-hook move" in err
    assert link_exists(spare_link, gh.d)


def test_network_hook_never_moves_the_default_route_interface(guarded_hooks):
    from hookbin.hooks import network_hook
    routes = sorted(network_hook.default_route_ifaces())
    if not routes:
        pytest.fail("this host has no default route to protect")
    gh = guarded_hooks
    spec = gh.spec("net-default", prestart=[{
        "path": str(gh.hooks / "network-hook"), "args": ["network-hook", routes[0], "eth9"], "env": []}])
    err = refused_at_create(gh, "--network", "none", "--label", f"{hs.LABEL}={spec}")
    assert f"{routes[0]} carries a default route of the host" in err
    assert link_exists(routes[0], None)


# --- the image's labels -------------------------------------------------------------------

def import_with_label(d, value: str, tag: str) -> None:
    with tempfile.TemporaryDirectory(dir=d.base) as tmp:
        tar = busybox_rootfs_tar(Path(tmp) / "rootfs.tar")
        res = d.docker("import", "--change", f"LABEL {hs.LABEL}={value}", "--change", 'CMD ["sh"]', str(tar), tag)
    assert res.returncode == 0, res.stderr


def test_imported_image_label_is_refused_at_create(guarded_hooks, evil):
    gh = guarded_hooks
    tag = f"evil-{uuid.uuid4().hex[:6]}:latest"
    import_with_label(gh.d, evil.spec(gh.hooks, "image.json"), tag)
    inspect = json.loads(gh.docker("image", "inspect", tag).stdout)[0]
    assert hs.LABEL in inspect["Config"]["Labels"]
    before = gh.count()
    res = gh.docker("run", "--rm", tag, "true")
    assert res.returncode != 0 and DENIED in res.stderr and "[hook-spec]" in res.stderr, res.stderr
    assert "image label: " in res.stderr and "Safely:" in res.stderr
    assert gh.count() == before and not evil.loaded()


@pytest.fixture(scope="module")
def rule_off(guarded_hooks_factory):
    """The same setup with the plugin's hook-spec rule off: only the runtime stands. Its
    policy grants specs anywhere root's alone (spec_dirs = []), so what refuses the /tmp spec
    here is the ownership walk itself."""
    return guarded_hooks_factory(rules={"hook-spec": "off"}, spec_dirs=[])


def test_with_the_rule_off_the_runtime_refuses_the_image_label_at_start(rule_off, evil):
    gh = rule_off
    tag = f"evil-{uuid.uuid4().hex[:6]}:latest"
    import_with_label(gh.d, evil.spec(gh.hooks, "image-off.json"), tag)
    res = gh.docker("create", tag, "true")
    assert res.returncode == 0, res.stderr  # the plugin no longer looks
    cid = res.stdout.strip()
    # dockerd merged the image's label into the container's, and keeps it in config.v2.json,
    # which is what dockguard-runtime reads at every start.
    with open(gh.root / "containers" / cid / "config.v2.json") as f:
        assert json.load(f)["Config"]["Labels"][hs.LABEL].endswith("image-off.json")
    start = gh.docker("start", "-a", cid)
    assert start.returncode != 0
    assert "dockguard-runtime: hook-spec refused" in start.stderr, start.stderr
    assert "hook-spec is not trusted: " in start.stderr and "writable by group or others" in start.stderr
    assert not evil.loaded()
    gh.docker("rm", cid)


def test_with_the_rule_off_the_runtime_refuses_every_member_at_start(rule_off, evil):
    gh = rule_off
    preload = gh.spec("off-preload", prestart=[{
        "path": str(gh.hooks / "docker-hooks"), "args": ["docker-hooks", "--state", "prestart"],
        "env": [f"LD_PRELOAD={evil.so}"]}])
    etc = gh.spec("off-etc", prestart=[{
        "path": str(gh.hooks / "docker-hooks"), "args": ["docker-hooks", "--state", "prestart", "--log", "/etc/dg-x"],
        "env": []}])
    for value, fault in ((evil.spec(gh.hooks, "off.json"), "/tmp is writable by group or others (mode 1777)"),
                         (preload, "LD_PRELOAD is not on the allow-list"),
                         (etc, "log '/etc/dg-x' must be a file directly in")):
        res = gh.docker("run", "--rm", "--label", f"{hs.LABEL}={value}", "busybox", "true")
        assert res.returncode != 0 and "dockguard-runtime: hook-spec refused" in res.stderr, res.stderr
        assert fault in res.stderr, res.stderr
    assert not evil.loaded() and not os.path.exists("/etc/dg-x")


# --- benign twins ---------------------------------------------------------------------------

def wait_lines(path: Path, n: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            break
        time.sleep(0.1)
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_granted_spec_with_allowed_env_and_args_runs_its_hook(guarded_hooks):
    gh = guarded_hooks
    log = gh.logs / f"ok-{uuid.uuid4().hex[:6]}.log"
    spec = gh.spec("ok-" + log.stem, **{p: [{
        "path": str(gh.hooks / "docker-hooks"), "args": ["docker-hooks", "--state", p, "--log", str(log)],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "TZ=UTC"], "timeout": 5}] for p in hs.PHASES})
    res = gh.docker("run", "--label", f"{hs.LABEL}={spec}", "busybox", "true")
    assert res.returncode == 0, res.stderr
    cid = gh.docker("ps", "-lq", "--no-trunc").stdout.strip()
    lines = wait_lines(log, 2)
    assert [(x["id"], x["state"]) for x in lines[:2]] == [(cid, "prestart"), (cid, "poststart")]
    gh.docker("rm", cid)
    assert [x["state"] for x in wait_lines(log, 3)] == ["prestart", "poststart", "poststop"]
    st = os.stat(log)
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o640


def test_image_label_naming_a_granted_spec_runs_its_hook(guarded_hooks):
    gh = guarded_hooks
    log = gh.logs / f"img-{uuid.uuid4().hex[:6]}.log"
    spec = gh.spec("img-" + log.stem, prestart=[{
        "path": str(gh.hooks / "docker-hooks"), "args": ["docker-hooks", "--state", "prestart", "--log", str(log)],
        "env": [], "timeout": 5}])
    tag = f"good-{uuid.uuid4().hex[:6]}:latest"
    import_with_label(gh.d, spec, tag)
    res = gh.docker("run", "--rm", tag, "true")
    assert res.returncode == 0, res.stderr
    assert [x["state"] for x in wait_lines(log, 1)] == ["prestart"]
