"""A private dockerd: own data-root, exec-root, pidfile, socket and containerd namespace.

Used by the test fixtures, the benchmarks and the README's sandbox. It never touches a
system-wide daemon: everything it creates lives under one base directory, and `stop()`
tears it all down (containers, the daemon, its containerd).

The engine is `dockerd` on PATH, or the one named by DOCKGUARD_DOCKERD (e.g. Debian 13's
26.x unpacked by scripts/get-docker-engine.sh): the docker CLI, docker-proxy, docker-init
and CLI plugins (docker-buildx) of the same install tree then come first (see `Engine`).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from .namespaces import Bind, NamespaceError, Namespaces, PortForward
from dockguard import util
from dockguard.util import DockguardError

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
# busybox has no getent; dockerd >= 25 resolves `docker cp -a`'s user inside the container
# (name from /etc/passwd, else `getent passwd KEY`): the files, looked up by name or id.
GETENT = """#!/bin/sh
# getent DATABASE [KEY...]: passwd and group from /etc (no NSS in this image)
case "$1" in passwd|group) db=/etc/$1 ;; *) echo "getent: unknown database: $1" >&2; exit 1 ;; esac
shift
[ $# -eq 0 ] && exec cat "$db"
rc=0
for key in "$@"; do
  awk -F: -v k="$key" '$1 == k || $3 == k { print; found = 1; exit } END { exit !found }' "$db" || rc=2
done
exit $rc
"""


ENGINE_ENV = "DOCKGUARD_DOCKERD"

# dockerd release -> the API version it speaks (moby's api/common.go, per release branch).
API_OF_RELEASE = {
    "20.10": "1.41", "23.0": "1.42", "24.0": "1.43", "25.0": "1.44", "26.0": "1.45",
    "26.1": "1.45", "27.0": "1.46", "27.1": "1.46", "27.2": "1.47", "27.3": "1.47",
    "27.4": "1.47", "27.5": "1.47", "28.0": "1.48", "28.1": "1.49", "28.2": "1.50",
    "28.3": "1.51", "28.4": "1.51", "28.5": "1.51",
}
_VERSIONS: dict[str, str] = {}


class DaemonError(DockguardError, RuntimeError):
    """The private daemon could not be started or driven."""


def version_tuple(v: str) -> tuple[int, ...]:
    """'1.45' -> (1, 45); '26.1.5+dfsg1' -> (26, 1, 5)."""
    return tuple(int(x) for x in re.findall(r"\d+", v.split("+")[0].split("-")[0]))


@dataclass(frozen=True)
class Engine:
    """Which dockerd, and the tools of its install tree.

    DOCKGUARD_DOCKERD=/x/usr/sbin/dockerd makes /x the tree: /x/usr/sbin, /x/usr/bin, /x/sbin
    and /x/bin go first on PATH (the CLI, docker-proxy, docker-init, containerd when shipped
    there) and /x/usr/libexec/docker/cli-plugins (docker-buildx) is linked into the private
    DOCKER_CONFIG. Unset (or a dockerd under /), the host's PATH decides as usual.
    """

    dockerd: str
    tree: Path | None = None

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Engine":
        chosen = (environ if environ is not None else os.environ).get(ENGINE_ENV, "").strip()
        if not chosen:
            return cls(shutil.which("dockerd") or "dockerd")
        path = Path(chosen).absolute()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise DaemonError(f"{ENGINE_ENV}={chosen}: not an executable file "
                              "(scripts/get-docker-engine.sh fetches Debian 13's 26.x)")
        parent = path.parent
        tree = parent.parent if parent.name in ("sbin", "bin") else parent
        if tree.name == "usr":
            tree = tree.parent
        return cls(str(path), None if tree == Path("/") else tree)

    def bin_dirs(self) -> list[str]:
        if self.tree is None:
            return []
        return [str(self.tree / d) for d in ("usr/sbin", "usr/bin", "sbin", "bin") if (self.tree / d).is_dir()]

    def path(self, base: str | None = None) -> str:
        base = os.environ.get("PATH", os.defpath) if base is None else base
        return os.pathsep.join(self.bin_dirs() + ([base] if base else []))

    @property
    def cli(self) -> str:
        """The docker CLI to drive this engine with: the tree's, else the one on PATH."""
        return shutil.which("docker", path=self.path()) or "docker"

    def cli_plugins(self) -> list[Path]:
        if self.tree is None:
            return []
        out = []
        for d in ("usr/libexec/docker/cli-plugins", "usr/lib/docker/cli-plugins"):
            if (self.tree / d).is_dir():
                out += sorted(p for p in (self.tree / d).iterdir() if p.name.startswith("docker-"))
        return out

    def version(self) -> str:
        """The engine's release, from `dockerd --version` (e.g. '26.1.5')."""
        if self.dockerd in _VERSIONS:
            return _VERSIONS[self.dockerd]
        try:
            out = subprocess.run([self.dockerd, "--version"], capture_output=True, text=True, timeout=30).stdout
        except OSError as e:
            raise DaemonError(f"{self.dockerd}: {e}") from None
        m = re.search(r"version v?(\d+\.\d+\.\d+)", out)
        if not m:
            raise DaemonError(f"{self.dockerd} --version: unexpected output {out!r}")
        _VERSIONS[self.dockerd] = m.group(1)
        return m.group(1)

    def api_version(self) -> str | None:
        """The API version this release speaks, when known without starting it (else None:
        start one and ask `PrivateDaemon.version()`)."""
        major_minor = ".".join(self.version().split(".")[:2])
        return API_OF_RELEASE.get(major_minor)

    def describe(self) -> str:
        api = self.api_version()
        return f"dockerd {self.version()} (API {api or '?'}) at {self.dockerd}, CLI {self.cli}"


def find_busybox() -> str:
    for cand in BUSYBOX_CANDIDATES:
        if os.path.isfile(cand):
            out = subprocess.run([cand, "--list"], capture_output=True, text=True)
            if out.returncode == 0 and "sh" in out.stdout.split():
                return cand
    raise DaemonError("busybox-static not found: apt-get install -y busybox-static")


def busybox_rootfs_tar(dest: Path, busybox: str | None = None) -> Path:
    """Write a tar of a minimal rootfs: /bin/busybox, one symlink per applet, passwd/group."""
    busybox = busybox or find_busybox()
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    with tarfile.open(dest, "w") as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)

        def add_text(name: str, text: str, mode: int = 0o644) -> None:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "etc", "dev", "proc", "sys", "root", "var", "run"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        tar.add(busybox, arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
        add_text("etc/passwd", PASSWD)
        add_text("etc/group", GROUP)
        add_text("bin/getent", GETENT, 0o755)
    return dest


def _UnixHTTPConnection(path: str, timeout: float):
    """An http.client connection to dockerd's unix socket (kept for the tests that use it)."""
    return util.unix_connection(path, timeout)


@dataclass
class PrivateDaemon:
    """One dockerd of our own, in mount and network namespaces of its own (see
    dockguard/harness/namespaces.py). `base` should be short: unix socket paths are capped at 108 bytes.

    Its socket (base/docker.sock) and every path on the host's filesystems are shared with
    the host; its mounts, links, bridge (docker0 of its own, so containers have a normal
    network), iptables and plugin discovery dirs are not. An authz plugin for it puts its
    socket in `plugin_dir` (PluginProcess(..., plugin_dir=d.plugin_dir)); commands that must
    see the daemon's network (veths for network-hook) run through `run_in_netns`.
    """

    base: Path
    authz_plugins: list[str] = field(default_factory=list)
    runtimes: dict[str, dict] = field(default_factory=dict)
    default_runtime: str | None = None
    extra_args: list[str] = field(default_factory=list)
    dockerd: str | None = None          # None: DOCKGUARD_DOCKERD, else dockerd on PATH
    proc: subprocess.Popen | None = None
    _ns: Namespaces | None = field(default=None, init=False, repr=False)
    _forwards: list = field(default_factory=list, init=False, repr=False)

    @property
    def engine(self) -> Engine:
        return Engine(self.dockerd) if self.dockerd else Engine.from_env()

    @property
    def socket(self) -> Path:
        return self.base / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def data_root(self) -> Path:
        return self.base / "root"

    @property
    def exec_root(self) -> Path:
        return self.base / "exec"

    @property
    def log_path(self) -> Path:
        return self.base / "dockerd.log"

    @property
    def plugin_dir(self) -> Path:
        """Seen by this daemon (only) as /run/docker/plugins: its plugins' sockets go here."""
        return self.base / "plugins"

    @property
    def pidfile(self) -> Path:
        return self.base / "docker.pid"

    @property
    def namespaces(self) -> Namespaces:
        if self._ns is None:
            self._ns = Namespaces(self.base / "ns.json", [
                Bind(self.plugin_dir, "/run/docker/plugins", create=True),
                Bind(self.base / "spec-plugins", "/etc/docker/plugins"),
                Bind(self.base / "spec-plugins", "/usr/lib/docker/plugins"),
            ])
        return self._ns

    @property
    def namespace(self) -> str:
        """containerd namespaces must match [A-Za-z0-9]+([._-][A-Za-z0-9]+)*: a temp dir name
        may hold '_' at its ends, so derive the namespace from a digest of the path."""
        return "dg-" + hashlib.sha1(str(self.base).encode()).hexdigest()[:16]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env.pop("DOCKER_CONTEXT", None)
        env["DOCKER_CONFIG"] = str(self.base / "client")
        env["PATH"] = self.engine.path(env.get("PATH", os.defpath))
        return env

    def argv(self) -> list[str]:
        args = [
            self.engine.dockerd,
            "--config-file", str(self.base / "daemon.json"),
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--pidfile", str(self.pidfile),
            "-H", self.host,
            "--iptables=false",
            "--ip-masq=false",
            "--containerd-namespace", self.namespace,
            "--containerd-plugins-namespace", self.namespace + "-p",
            "--shutdown-timeout", "2",
        ]
        for plugin in self.authz_plugins:
            args.append(f"--authorization-plugin={plugin}")
        return args + list(self.extra_args)

    def write_config(self) -> None:
        # 20.10 writes its trust key to /etc/docker/key.json unless told otherwise (>= 23
        # accept and ignore the key)
        conf: dict = {"deprecated-key-path": str(self.base / "key.json")}
        if self.runtimes:
            conf["runtimes"] = self.runtimes
        if self.default_runtime:
            conf["default-runtime"] = self.default_runtime
        (self.base / "daemon.json").write_text(json.dumps(conf, indent=2))

    def link_cli_plugins(self) -> None:
        """The engine tree's CLI plugins (docker-buildx) in our DOCKER_CONFIG, found first."""
        plugins = self.engine.cli_plugins()
        if not plugins:
            return
        d = self.base / "client" / "cli-plugins"
        d.mkdir(parents=True, exist_ok=True)
        for p in plugins:
            link = d / p.name
            if not link.is_symlink() or os.readlink(link) != str(p):
                link.unlink(missing_ok=True)
                link.symlink_to(p)

    def start(self, timeout: float = 60.0) -> "PrivateDaemon":
        engine = self.engine
        if shutil.which(engine.dockerd) is None:
            raise DaemonError(f"{engine.dockerd} not found: apt-get install -y docker.io containerd runc")
        for tool in ("unshare", "nsenter", "ip"):
            if shutil.which(tool) is None:
                raise DaemonError(f"{tool} not found: apt-get install -y util-linux iproute2")
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "client").mkdir(exist_ok=True)
        self.plugin_dir.mkdir(exist_ok=True)
        self.link_cli_plugins()
        self.write_config()
        self._check_plugin_sockets()
        try:
            self.namespaces.ensure()
            argv = self.namespaces.enter_argv(self.argv())
        except NamespaceError as e:
            raise DaemonError(str(e)) from None
        self.proc = util.spawn(argv, self.log_path, env=self.env())
        try:
            util.wait_ready(self.proc, lambda: self.socket.exists() and self.ping(), timeout)
        except util.NotReady as exc:
            if not exc.exited:
                self.stop()
            raise DaemonError(f"dockerd {exc}:\n{self.log_tail()}") from None
        return self

    def _check_plugin_sockets(self) -> None:
        """An authz plugin started the old way (socket in the host's /run/docker/plugins) is
        invisible to this daemon: say how to start it, rather than dockerd's "not found"."""
        for name in self.authz_plugins:
            name = name.split(":")[0]
            if not (self.plugin_dir / f"{name}.sock").exists() and Path(f"/run/docker/plugins/{name}.sock").exists():
                raise DaemonError(f"authz plugin {name}: its socket is in the host's /run/docker/plugins, which this "
                                  f"daemon does not see; start it with PluginProcess(..., plugin_dir=daemon.plugin_dir)")

    # ---- the daemon's network namespace ----

    def netns_argv(self, *argv: str, mount: bool = False) -> list[str]:
        """argv run in this daemon's network namespace (and mount namespace if asked)."""
        return self.namespaces.enter_argv(list(argv), mount=mount, net=True)

    def run_in_netns(self, *argv: str, check: bool = False, mount: bool = False,
                     timeout: float = 60) -> subprocess.CompletedProcess:
        """e.g. d.run_in_netns("ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")"""
        return subprocess.run(self.netns_argv(*argv, mount=mount), capture_output=True, text=True,
                              check=check, timeout=timeout)

    def forward_port(self, port: int, host: str = "127.0.0.1") -> PortForward:
        """Make a service on the host's HOST:PORT reachable at the same address from the
        daemon's netns (e.g. a test registry on loopback); closed when the daemon stops."""
        try:
            fwd = PortForward(self.netns_path, port, host)
        except NamespaceError as e:
            raise DaemonError(str(e)) from None
        self._forwards.append(fwd)
        return fwd

    @property
    def netns_path(self) -> str:
        """/proc/PID/ns/net of the daemon's network namespace (open it to setns into it)."""
        pid = self.namespaces.pid
        if pid is None:
            raise DaemonError(f"daemon in {self.base} is not running")
        return f"/proc/{pid}/ns/net"

    def ping(self) -> bool:
        """GET /_ping over the socket (authz plugins are asked about it too)."""
        try:
            return util.unix_request(self.socket, "GET", "/_ping", timeout=2)[0] == 200
        except OSError:
            return False

    def api(self, method: str, path: str, timeout: float = 30) -> tuple[int, bytes]:
        """One raw request over the socket (no CLI, no SDK): (status, body)."""
        return util.unix_request(self.socket, method, path, timeout=timeout)

    def version(self) -> dict:
        """GET /version of the running daemon: Version, ApiVersion, MinAPIVersion, ..."""
        status, body = self.api("GET", "/version")
        if status != 200:
            raise DaemonError(f"GET /version: {status} {body[:200]!r}")
        return json.loads(body)

    def api_version(self) -> str:
        return self.version()["ApiVersion"]

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def docker(self, *args: str, check: bool = False, input: str | bytes | None = None,
               timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run the real docker CLI against this daemon (`env`: extra variables, e.g.
        DOCKER_API_VERSION=1.41 for a field newer CLIs no longer send)."""
        text = not isinstance(input, bytes)
        return subprocess.run([self.engine.cli, *args], env={**self.env(), **(env or {})}, capture_output=True,
                              text=text, input=input, timeout=timeout, check=check)

    def import_busybox(self, tag: str = "busybox:latest") -> str:
        with tempfile.TemporaryDirectory(dir=self.base) as tmp:
            tar = busybox_rootfs_tar(Path(tmp) / "rootfs.tar")
            res = self.docker("import", "--change", 'CMD ["sh"]', str(tar), tag)
        if res.returncode != 0:
            raise DaemonError(f"docker import failed: {res.stderr}")
        return res.stdout.strip()

    def _dockerd_pid(self) -> int | None:
        """Our running dockerd: the child we started, or (another process started it) the pid
        in its pidfile, provided that process is inside our namespaces."""
        if self.proc is not None:
            return self.proc.pid if self.proc.poll() is None else None
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self.namespaces.contains(pid) else None

    def stop(self, timeout: float = 30.0) -> None:
        """Stop dockerd (it stops our containers), then whatever still runs in our namespaces,
        then the namespaces themselves. Only processes inside them (and their children)."""
        pid = self._dockerd_pid()
        if pid is not None:
            # dockerd stops its containers on SIGTERM (within --shutdown-timeout); no API
            # call here, since a guarded daemon may refuse `rm -f`.
            self._terminate(pid, timeout)
        self._reap_leftovers(confirm_pid=pid)
        while self._forwards:
            self._forwards.pop().close()

    def _terminate(self, pid: int, timeout: float) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if self.proc is not None and self.proc.pid == pid:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            return
        try:
            psutil.Process(pid).wait(timeout)
        except psutil.TimeoutExpired:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        except psutil.Error:
            pass

    def restart(self, timeout: float = 60.0) -> "PrivateDaemon":
        """Restart dockerd *keeping* its containers and namespaces (unlike stop()): SIGTERM,
        wait, start.

        As on a real daemon restart, running containers are stopped by dockerd (give them a
        short --stop-timeout) and those with a restart policy are started again at boot.
        """
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)
        return self.start(timeout)

    def _reap_leftovers(self, confirm_pid: int | None = None) -> None:
        """Kill what still runs inside our namespaces (shims, containerd, containers) and end
        the namespaces; found by namespace identity, never by command line."""
        self.namespaces.stop(confirm_pid)
        # mounts under base on the host: only a daemon started before namespaces made them
        mounts = []
        root = str(self.base)
        try:
            with open("/proc/self/mounts") as f:
                for line in f:
                    mp = line.split()[1].replace("\\040", " ")
                    if mp.startswith(root + "/"):
                        mounts.append(mp)
        except OSError:
            pass
        for mp in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
