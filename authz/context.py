"""What rules may ask about the world: the daemon (through the docker SDK) and the host.

This is the edge. Rules see only `RequestContext`'s methods; tests give them plain data
through a subclass. One `RequestContext` per request memoises its lookups, so a rule set
that asks twice about the same container costs one daemon call.

Lookups go back to the daemon, which asks this very plugin about them: the server must
answer those nested requests while the outer one waits (see authz/serve.py for why the
gevent worker makes that deadlock-free). A lookup that fails raises `LookupFailed`, and the
engine denies: never allow by accident.
"""
from __future__ import annotations

import os
import re
import stat
import threading
import time

from dockguard import util

from . import daemondirs
from .policy import Lists  # noqa: F401 - the compiled lists a RequestContext carries
from .rules import LookupFailed  # noqa: F401 - raised here, caught by the engine

DEFAULT_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
DEFAULT_RUNTIME_TTL = 10.0
# dockerd's volume names (daemon/names RestrictedNamePattern): nothing that leaves a directory
_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


class DaemonClient:
    """The docker SDK's low-level client, made lazily, shared by all requests of a worker."""

    def __init__(self, base_url: str | None = None, timeout: float = 10.0):
        self.base_url = base_url
        self.timeout = timeout
        self._api = None
        self._api_lock = threading.Lock()
        self._root: str | None = None
        self._default_runtime: tuple[str, float] | None = None
        self._root_paths: frozenset[str] | None = None
        self._socket_paths: frozenset[str] | None = None
        self._daemon_dirs: frozenset[str] | None = None
        self._nnp = False  # dockerd's own --no-new-privileges, found with daemon_dirs

    @property
    def api(self):
        if self._api is None:
            with self._api_lock:  # one client made, not one per waiting request
                if self._api is None:
                    self._api = self._make_api()
        return self._api

    def _make_api(self):
        """The client at the daemon's API version, read from /_ping's API-Version header.
        The SDK's "auto" asks /version instead, which dockerd answers only after querying
        containerd and running runc: with 1000 clients that took ~40 s, past the lookup
        timeout, and every create whose rules look something up was refused."""
        import docker
        from docker.constants import MINIMUM_DOCKER_API_VERSION as least
        if self.base_url:
            api = docker.APIClient(base_url=self.base_url, version=least, timeout=self.timeout)
        else:
            api = docker.from_env(version=least, timeout=self.timeout).api
        res = api._get(api.base_url + "/_ping")
        res.raise_for_status()
        version = res.headers.get("API-Version")
        api._version = version if version else api._retrieve_server_version()
        return api

    def socket_path(self) -> str | None:
        url = self.base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        if url.startswith("unix://"):
            return url[len("unix://"):]
        return None

    def _call(self, what: str, fn, not_found=None):
        """fn(api) with every failure (client creation included) a LookupFailed."""
        import docker.errors
        try:
            return fn(self.api)
        except docker.errors.NotFound:
            return not_found
        except Exception as exc:  # noqa: BLE001 - every failure is a clear denial upstream
            raise LookupFailed(f"could not look up {what}: {exc}") from None

    def container(self, ref: str) -> dict | None:
        return self._call(f"container {ref!r}", lambda api: api.inspect_container(ref))

    def container_ids(self) -> list[str]:
        rows = self._call("the container list", lambda api: api.containers(all=True, quiet=True))
        return [r if isinstance(r, str) else r.get("Id", "") for r in rows or []]

    def image_config(self, ref: str) -> dict:
        info = self._call(f"image {ref!r}", lambda api: api.inspect_image(ref), not_found={})
        return (info or {}).get("Config") or {}

    def volume(self, name: str) -> dict | None:
        """The volume NAME under whatever driver holds it, or None. Asked of dockerd only when
        it may exist (`volume_may_exist`): for a name it does not know, dockerd's GET /volumes/NAME
        (and its list, name filter or not) first discovers every legacy plugin in
        /run/docker/plugins and /etc/docker/plugins, and a stale entry there made that ~15 s on
        20.10 and 26 (measured), past the lookup timeout: `-v NEWVOL:/x` was refused."""
        if not self.volume_may_exist(name):
            return None
        return self._call(f"volume {name!r}", lambda api: api.inspect_volume(name))

    def volume_may_exist(self, name: str) -> bool:
        """False only when dockerd surely holds no volume NAME: a valid volume name, no
        directory <root>/volumes/NAME (the local driver makes it before it knows the volume,
        and loads every directory there at start) and the name's bytes nowhere in
        <root>/volumes/metadata.db (where dockerd records every volume it creates, any driver:
        bolt stores keys verbatim). Anything unreadable or odd: True (ask dockerd). Not seen:
        a volume a plugin made on its own, never through this dockerd; rules judge the stored
        options of `local` volumes only (authz/rules/mounts.py), and those are always seen."""
        if not _VOLUME_NAME.fullmatch(name):
            return True
        try:
            vols = os.path.join(self.docker_root(), "volumes")
            if not stat.S_ISDIR(os.lstat(vols).st_mode) or os.path.lexists(os.path.join(vols, name)):
                return True
            with open(os.path.join(vols, "metadata.db"), "rb") as f:
                return name.encode() in f.read()
        except (OSError, LookupFailed):
            return True

    def plugin(self, name: str) -> dict | None:
        return self._call(f"plugin {name!r}", lambda api: api.inspect_plugin(name))

    def default_runtime(self) -> str:
        """The runtime dockerd gives a container created without one. Asked again after
        DEFAULT_RUNTIME_TTL seconds: `default-runtime` can change on a daemon reload."""
        now = time.monotonic()
        if self._default_runtime is None or now - self._default_runtime[1] > DEFAULT_RUNTIME_TTL:
            info = self._call("the daemon's info", lambda api: api.info())
            name = (info or {}).get("DefaultRuntime")
            if not name:
                raise LookupFailed("the daemon did not report its DefaultRuntime")
            self._default_runtime = (name, now)
        return self._default_runtime[0]

    def security_options(self) -> list[str]:
        """`docker info` SecurityOptions (name=apparmor, name=selinux, name=no-new-privileges,
        ...): what dockerd applies to every container on this host. Asked every time (the
        cis profile's rules only; memoised per request by RequestContext)."""
        info = self._call("the daemon's info", lambda api: api.info())
        opts = (info or {}).get("SecurityOptions")
        if not isinstance(opts, list):
            raise LookupFailed("the daemon did not report its SecurityOptions")
        opts = [str(o) for o in opts]
        if "name=no-new-privileges" not in opts and self._daemon_wide_nnp():
            opts.append("name=no-new-privileges")
        return opts

    def _daemon_wide_nnp(self) -> bool:
        """dockerd 20.10 applies --no-new-privileges (flag or daemon.json) without reporting it
        in `docker info` (26 does): read where docker-bench reads it, from the command line and
        config of the dockerd serving our socket. Not found: False (containers must carry it)."""
        try:
            self.daemon_dirs()
        except LookupFailed:
            return False
        return self._nnp

    def docker_root(self) -> str:
        if self._root is None:
            info = self._call("the daemon's info", lambda api: api.info())
            root = (info or {}).get("DockerRootDir")
            if not root:
                raise LookupFailed("the daemon did not report its DockerRootDir")
            self._root = root
        return self._root

    def socket_paths(self) -> frozenset[str]:
        """The daemon's socket and the standard ones, as given and resolved (once per process)."""
        if self._socket_paths is None:
            sock = self.socket_path()
            socks = ((sock,) if sock else ()) + DEFAULT_SOCKETS
            self._socket_paths = frozenset(socks) | {os.path.realpath(x) for x in socks}
        return self._socket_paths

    def root_paths(self) -> frozenset[str]:
        """Docker's root, as reported and resolved (asked and resolved once per process)."""
        if self._root_paths is None:
            root = self.docker_root()
            self._root_paths = frozenset({root, os.path.realpath(root)})
        return self._root_paths

    def daemon_dirs(self) -> frozenset[str]:
        """The daemon's exec-root, data-root and containerd's root, state and socket, as found
        from the process serving our socket (authz/daemondirs.py; once per process)."""
        if self._daemon_dirs is None:
            sock = self.socket_path()
            if not sock:
                raise LookupFailed("the daemon's exec-root can be found only through its unix socket")
            root = self.docker_root()
            try:
                dirs = daemondirs.find_dockerd(sock, root)
                self._nnp = dirs.no_new_privileges
                found = {dirs.data_root, dirs.exec_root, dirs.containerd_sock}
                found.update(daemondirs.find_containerd(dirs.containerd_sock) or ())
            except daemondirs.NotFound as exc:
                raise LookupFailed(f"could not find the daemon's exec-root: {exc}") from None
            self._daemon_dirs = frozenset(found | {os.path.realpath(p) for p in found})
        return self._daemon_dirs


class HostFacts:
    """Facts read from this host's filesystem, where dockerd runs too."""

    _blkio: bool | None = None
    _cgroup_v2: bool | None = None

    def cgroup_v2(self) -> bool:
        """A unified (v2) cgroup hierarchy: there dockerd's default cgroupns is private."""
        if self._cgroup_v2 is None:
            self._cgroup_v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
        return self._cgroup_v2

    def realpath(self, path: str) -> str:
        try:
            return os.path.realpath(path)
        except (OSError, ValueError):
            return ""

    def is_regular_file(self, path: str) -> bool:
        try:
            return stat.S_ISREG(os.stat(path).st_mode)
        except (OSError, ValueError):
            return False

    def device_node(self, path: str) -> tuple[str, int, int] | None:
        return util.device_node(path, directories=True)

    def scheduler(self, device: str) -> tuple[str, str, list[str]] | None:
        """(disk name, active scheduler, available) for a block device path, or None."""
        node = self.device_node(device)
        if node is None or node[0] != "b":
            return None
        sysdir = os.path.realpath(f"/sys/dev/block/{node[1]}:{node[2]}")
        if os.path.exists(os.path.join(sysdir, "partition")):
            sysdir = os.path.dirname(sysdir)
        try:
            with open(os.path.join(sysdir, "queue", "scheduler")) as f:
                words = f.read().split()
        except OSError:
            return None
        active = next((w[1:-1] for w in words if w.startswith("[")), "none")
        return os.path.basename(sysdir), active, [w.strip("[]") for w in words]

    def blkio_weight_supported(self) -> bool:
        if self._blkio is None:
            if os.path.isdir("/sys/fs/cgroup/blkio"):
                self._blkio = os.path.exists("/sys/fs/cgroup/blkio/blkio.weight")
            else:
                try:
                    with open("/sys/fs/cgroup/cgroup.controllers") as f:
                        self._blkio = "io" in f.read().split()
                except OSError:
                    self._blkio = False
        return self._blkio


def request_contexts(policy, daemon: DaemonClient | None = None, host: HostFacts | None = None,
                     self_names: frozenset[str] = frozenset()):
    """The engine's context factory: a fresh RequestContext per request over one shared
    DaemonClient and HostFacts (built here, at the edge; the engine only calls the factory)."""
    daemon = daemon or DaemonClient(timeout=policy.lookup_timeout)
    host = host or HostFacts()
    return lambda: RequestContext(policy.lists, daemon, host, self_names)


class RequestContext:
    """Per-request view for rules: lists, memoised daemon lookups, host facts."""

    def __init__(self, lists: Lists, daemon: DaemonClient, host: HostFacts,
                 self_names: frozenset[str] = frozenset()):
        self.lists = lists
        self._daemon = daemon
        self._host = host
        self._self_names = self_names
        self._memo: dict = {}
        self.request = None  # the request judged: rules read it as facts.request

    def _memoised(self, key, fn, *args):
        if key not in self._memo:
            self._memo[key] = fn(*args)
        return self._memo[key]

    def container(self, ref: str):
        return self._memoised(("c", ref), self._daemon.container, ref)

    def container_ids(self):
        return self._memoised(("ids",), self._daemon.container_ids)

    def image_config(self, ref: str):
        return self._memoised(("i", ref), self._daemon.image_config, ref)

    def plugin(self, name: str):
        return self._memoised(("p", name), self._daemon.plugin, name)

    def volume(self, name: str):
        return self._memoised(("v", name), self._daemon.volume, name)

    def docker_root(self) -> str:
        return self._daemon.docker_root()

    def hook_spec_problems(self, value: str) -> list[str]:
        """What is wrong with a `dockguard.hook-spec` value: the spec files it names are read
        and their directories walked here, at the edge (hookbin/spec.py, the same checks
        dockguard-runtime applies), under the policy's [hookspec]; memoised per request."""
        return self._memoised(("hs", value), self._hook_spec_problems, value)

    def _hook_spec_problems(self, value: str) -> list[str]:
        from hookbin.spec import check_label
        return list(check_label(value, self.docker_root(), getattr(self.lists, "hookspec", None)))

    def default_runtime(self) -> str:
        return self._memoised(("rt",), self._daemon.default_runtime)

    def self_names(self) -> frozenset[str]:
        return self._self_names

    def daemon_security_options(self):
        return self._memoised(("so",), self._daemon.security_options)

    def sensitive_paths(self):
        """The policy's paths and the standard sockets: known without asking the daemon."""
        return self._memoised(("sp",), self._static_paths)

    def _static_paths(self):
        return frozenset(self.lists.sensitive_paths) | self._daemon.socket_paths()

    def daemon_paths(self):
        """This daemon's own root: sensitive wherever it is."""
        return self._daemon.root_paths()

    def daemon_dirs(self):
        """The daemon's exec-root and containerd's directories: sensitive wherever they are."""
        return self._daemon.daemon_dirs()

    def realpath(self, path):
        return self._host.realpath(path)

    def is_regular_file(self, path):
        return self._host.is_regular_file(path)

    def device_node(self, path):
        return self._host.device_node(path)

    def scheduler(self, device):
        return self._host.scheduler(device)

    def blkio_weight_supported(self):
        return self._host.blkio_weight_supported()

    def cgroup_v2(self):
        return self._host.cgroup_v2()
