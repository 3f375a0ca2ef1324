"""The runtime's line of defence: judge the OCI config runc is about to run, with the plugin's rules.

The plugin judges API requests, a proxy for what will run; the runtime sees the truth: the
bundle's config.json at every `runc create`, whatever started it (`docker start`, a restart
policy, dockerd restarting containers at boot), for containers made before the plugin guarded
the daemon as for new ones. The config is turned into the plugin's `Spec` shape and judged by
the plugin's own rule functions (authz/rules), with the plugin's policy levels
(hookbin/rtpolicy.py) and a static context: no daemon lookups, only host facts gathered here.

How the OCI config maps to what the rules read:
- a namespace missing from `linux.namespaces` is the host's; one given by `path` is the
  host's when it is the wrapper's own (or PID 1's) namespace (`--net host` is dockerd's
  `netns/default`; `--net container:X` with X in the host's network is the host's too);
- capabilities: the union of the bounding, effective, permitted, inheritable and ambient sets;
- privileged: every device allowed with CAP_SYS_ADMIN (what --privileged makes);
- seccomp: no `linux.seccomp`, or a filter allowing by default with nothing refused, is
  unconfined; AppArmor `unconfined`; an SELinux label of type spc_t/unconfined_t is
  labelling disabled (no profile or label says nothing: see spec_from_config);
- masked and read-only paths as given; kernel memory from `linux.resources.memory`;
- devices: `linux.devices` by their major:minor; device-cgroup allow entries as rules;
- mounts: Docker's standard ones (/proc, /sys, /dev, the container's own resolv.conf, hosts,
  hostname, shm) are Docker's; every other bind source is opened once and pinned
  (hookbin/hostpath.py) and judged as the host path it is, a volume by what is mounted on
  its `_data`; kernel filesystems mounted anywhere else are their host paths;
- a missing cgroup namespace counts on cgroup v2 hosts only (Docker's default there).
Pure down to "the edge" below (host facts, pinning, check_bundle). docs/runtime.md.
"""
from __future__ import annotations

import os
import posixpath
import stat

from hookbin.hostpath import PSEUDO_FS, overlay_dirs
from dockguard.util import DockguardError

# The plugin's rules the runtime enforces (each over fields the OCI config carries). Not here:
# seccomp-profile (a custom profile is judged at create by the plugin; the runtime sees
# Docker's default profile on every container and would pay libseccomp for each), and the
# rules about requests rather than containers (names, attach, health, hooks, lifecycle).
RUNTIME_RULES = ("privileged", "host-namespace", "dangerous-capability", "seccomp-unconfined",
                 "apparmor-unconfined", "selinux-disabled", "writable-proc-sys",
                 "sensitive-mount", "file-bind-mount", "sensitive-device",
                 "device-cgroup-rule", "kernel-memory",
                 "cis-capabilities", "cis-mount-propagation")  # the cis profile's, where on (docs/cis.md)
RULE_MODULES = ("privileges", "capabilities", "security", "mounts", "devices", "resources", "cis")

# OCI namespace type -> the plugin's kind (spec.namespaces) for the ones Docker always makes
# private unless told to share the host's. user is absent by default (no userns-remap), and so
# is cgroup on cgroup v1 hosts (shared there by default): judged only on v2 (facts["cgroup2"]).
NAMESPACE_KINDS = {"pid": "pid", "ipc": "ipc", "uts": "uts", "network": "net", "mount": "mnt"}
PROC_NS = {"pid": "pid", "ipc": "ipc", "uts": "uts", "network": "net", "mount": "mnt",
           "user": "user", "cgroup": "cgroup"}
CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")
PROPAGATION = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
ALLOW_ACTIONS = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG")

# Docker's own mounts, by type and destination: kernel filesystems where a container has them.
STANDARD_MOUNTS = frozenset({("proc", "/proc"), ("sysfs", "/sys"), ("cgroup", "/sys/fs/cgroup"),
                             ("cgroup2", "/sys/fs/cgroup"), ("tmpfs", "/dev"), ("devpts", "/dev/pts"),
                             ("mqueue", "/dev/mqueue"), ("tmpfs", "/dev/shm")})
OWN_FILES = ("resolv.conf", "hostname", "hosts")


# --- the plugin's Spec shape, without its import cost ------------------------------------

class Mount:
    """authz.spec.Mount's fields (a test keeps the two in step)."""
    __slots__ = ("kind", "source", "target", "read_only", "driver", "driver_opts", "origin",
                 "propagation")

    def __init__(self, kind, source, target, read_only=False, driver="", driver_opts=None, origin="OCI",
                 propagation=""):
        self.kind, self.source, self.target, self.read_only = kind, source, target, read_only
        self.driver, self.driver_opts, self.origin = driver, driver_opts or {}, origin
        self.propagation = propagation  # read by cis-mount-propagation (the cis profile)


class Device:
    __slots__ = ("host", "container", "perms")

    def __init__(self, host, container, perms="rwm"):
        self.host, self.container, self.perms = host, container, perms


# authz.spec.Spec's fields and empty values (`dataclasses` alone costs ~10 ms of start-up).
SPEC_FIELDS = {
    "privileged": False, "namespaces": dict, "cap_add": list, "capabilities": None,
    "security_opt": list, "selinux_disabled": False, "masked_paths": list, "readonly_paths": list,
    "mounts": list, "devices": list, "device_cgroup_rules": list, "kernel_memory": 0,
    "kernel_memory_tcp": 0, "blkio_weight": 0, "blkio_weight_device": list, "auto_remove": False,
    "attach_stdin": False, "attach_stdout": False, "attach_stderr": False, "tty": False,
    "open_stdin": False, "cmd": None, "entrypoint": None, "image": "", "labels": dict,
    "health_test": None, "health_options": dict, "user": "", "name": "", "networks": list,
    "volumes_from": list, "annotations": dict, "runtime": "",
    # the cis profile's (authz/rules/cis.py; not in RUNTIME_RULES: docs/cis.md)
    "memory": 0, "cpu_shares": 0, "nano_cpus": 0, "cpu_quota": 0, "pids_limit": 0,
    "readonly_rootfs": False, "restart_policy": "", "restart_max": 0, "restart_given": False,
    "apparmor_profile": None,
}


class Spec:
    """What the rules read, as authz.spec.Spec has it (every field, empty by default)."""
    __slots__ = tuple(SPEC_FIELDS)

    def __init__(self):
        for name, empty in SPEC_FIELDS.items():
            setattr(self, name, empty() if isinstance(empty, type) else empty)


class Request:
    """The request the rules are asked about: a container being created (no API request)."""
    action = "container.create"
    method = "POST"
    path = uri = ""
    user = None
    name = ""
    version = None
    body_raw = b""

    def q(self, key, default=""):
        return default

    def header(self, name):
        return None

    def body(self):
        return {}


class StaticContext:
    """`ctx` for the rules at the runtime: the policy's lists and facts gathered at the edge.

    No daemon lookups: the OCI config names no containers or volumes, only paths, and every
    path is already resolved (pinned) when a rule sees it.
    """

    def __init__(self, lists, docker_root: str, files: frozenset = frozenset(), nodes: dict | None = None):
        self.lists = lists
        self._root = docker_root
        self._files = files
        self._nodes = nodes or {}
        self.request = None  # the request judged: rules read it as facts.request

    def container(self, ref):
        return None

    def container_ids(self):
        return []

    def image_config(self, ref):
        return {}

    def volume(self, name):
        return None

    def plugin(self, name):
        return None

    def docker_root(self):
        return self._root

    def self_names(self):
        return frozenset()

    def sensitive_paths(self):
        return self.lists.sensitive_paths

    def daemon_paths(self):
        return frozenset({self._root})

    def daemon_dirs(self):
        return frozenset({self._root})

    def realpath(self, path):
        return path  # sources are pinned and named by the kernel: nothing left to resolve

    def bind_given(self, mount):
        """A pinned bind's source as config.json gives it (authz/exceptions.py matches bind
        exceptions on it and on the pinned path), from how pin_and_describe names it; None
        for what the container gets through another mount or a volume."""
        how = mount.origin
        if how == "bind":
            return mount.source
        if how.startswith("bind ") and how.endswith(" ->"):
            return how[5:-3]
        return None

    def is_regular_file(self, path):
        return path in self._files

    def device_node(self, path):
        return self._nodes.get(path)

    def scheduler(self, device):
        return None

    def blkio_weight_supported(self):
        return True


# --- OCI config -> Spec (pure) ------------------------------------------------------------

def _norm(p: str) -> str:
    return "/" + posixpath.normpath("/" + p).lstrip("/")


def docker_managed(source: str, dest: str, docker_root: str, container_id: str | None) -> bool:
    """The container's own files and shm, as dockerd writes them: nothing a user names.

    Exact paths only (a source dockerd would never write, such as one with `..`, is judged)."""
    if source != _norm(source) or not container_id:
        return False
    cdir = f"{docker_root.rstrip('/')}/containers/"
    if not source.startswith(cdir):
        return False
    parts = source[len(cdir):].split("/")
    if parts[0] == container_id and len(parts) >= 3 and parts[1] == "mounts":
        return True  # shm, secrets, configs of this container
    other = len(parts[0]) == 64 and all(ch in "0123456789abcdef" for ch in parts[0])
    if (parts[0] == container_id or other) and len(parts) == 2 and parts[1] in OWN_FILES:
        return True  # its own files, or with --net container:X, X's
    # --ipc container:X / shareable: X's shm
    return other and parts[1:] == ["mounts", "shm"]


def volume_name(path: str, docker_root: str) -> str | None:
    """`<root>/volumes/<name>/_data[/...]` -> name (a local volume's content), and
    `<root>/plugins/<id>/propagated-mount/...` -> "plugin <id>" (where a managed volume
    plugin mounts its volumes); else None."""
    root = docker_root.rstrip("/")
    top = f"{root}/volumes/"
    if path.startswith(top):
        parts = path[len(top):].split("/")
        if len(parts) >= 2 and parts[0] and parts[1] == "_data":
            return parts[0]
        return None
    top = f"{root}/plugins/"
    if path.startswith(top):
        parts = path[len(top):].split("/")
        if len(parts) >= 2 and len(parts[0]) == 64 and parts[1] == "propagated-mount":
            return f"of plugin {parts[0][:12]}"
    return None


def volume_top(path: str, docker_root: str) -> str:
    """The directory below which dockerd (or a volume plugin) mounts that volume's content."""
    root = docker_root.rstrip("/")
    if path.startswith(f"{root}/plugins/"):
        return "/".join(path.split("/")[:len(root.split("/")) + 3])  # <root>/plugins/<id>/propagated-mount
    return f"{root}/volumes"


def _options(m: dict) -> list:
    opts = m.get("options")
    return opts if isinstance(opts, list) else []


def is_bind(m: dict) -> bool:
    return m.get("type") == "bind" or any(o in ("bind", "rbind") for o in _options(m))


def bind_sources(config: dict, docker_root: str, container_id: str | None) -> list[tuple[int, str]]:
    """(index in mounts, source) of every bind the wrapper must pin and judge."""
    out = []
    for i, m in enumerate(config.get("mounts") or []):
        if not isinstance(m, dict) or not is_bind(m):
            continue
        src = m.get("source")
        if not isinstance(src, str):
            continue
        if docker_managed(src, str(m.get("destination", "")), docker_root, container_id):
            continue
        out.append((i, src))
    return out


def _dev_rule(e: dict) -> str:
    kind = e.get("type") or "a"
    if kind == "a":
        return "a"
    major, minor = e.get("major"), e.get("minor")
    major = "*" if major is None or major == -1 else str(major)
    minor = "*" if minor is None or minor == -1 else str(minor)
    return f"{kind} {major}:{minor} {e.get('access') or 'rwm'}"


def spec_from_config(config: dict, facts: dict) -> Spec:
    """The OCI config (and host facts from the edge) as the plugin's Spec.

    `facts`: host_ns (kinds whose given path is the host's namespace), cgroup2
    (enabled on the host), binds {mount index: [(how, host path)]} for the pinned sources,
    skip (mount indexes that are Docker's own or a docker-init binary).
    """
    spec = Spec()
    proc = config.get("process") or {}
    linux = config.get("linux") or {}
    # namespaces
    given = {}
    for ns in linux.get("namespaces") or []:
        if isinstance(ns, dict) and isinstance(ns.get("type"), str):
            given[ns["type"]] = ns
    kinds = dict(NAMESPACE_KINDS)
    if facts.get("cgroup2"):
        kinds["cgroup"] = "cgroupns"  # private by default where cgroups are unified (v2)
    for oci_kind, kind in kinds.items():
        if oci_kind not in given:
            spec.namespaces.setdefault(kind, []).append("host")
        elif oci_kind in facts.get("host_ns", ()):
            spec.namespaces.setdefault(kind, []).append("host")
    # capabilities
    caps = proc.get("capabilities") or {}
    seen = []
    for s in CAP_SETS:
        for c in caps.get(s) or []:
            if isinstance(c, str) and c not in seen:
                seen.append(c)
    spec.capabilities = seen
    # security options
    seccomp = linux.get("seccomp")
    if not isinstance(seccomp, dict) or _allows_everything(seccomp):
        spec.security_opt.append("seccomp=unconfined")
    # An absent AppArmor profile or SELinux label says nothing: dockerd sets a profile only
    # where it finds apparmor_parser as well as AppArmor, and labels only with
    # --selinux-enabled; neither shows in the config.
    if proc.get("apparmorProfile") == "unconfined":
        spec.security_opt.append("apparmor=unconfined")
    label = proc.get("selinuxLabel") or ""
    if isinstance(label, str) and label:
        parts = label.split(":")
        if len(parts) >= 3:
            spec.security_opt.append(f"label=type:{parts[2]}")
    spec.masked_paths.append([p for p in linux.get("maskedPaths") or [] if isinstance(p, str)])
    spec.readonly_paths.append([p for p in linux.get("readonlyPaths") or [] if isinstance(p, str)])
    # resources
    res = linux.get("resources") or {}
    mem = res.get("memory") or {}
    spec.kernel_memory = _int(mem.get("kernel"))
    spec.kernel_memory_tcp = _int(mem.get("kernelTCP"))
    # devices, and the device cgroup beyond them
    declared = set()
    for d in linux.get("devices") or []:
        if isinstance(d, dict) and isinstance(d.get("path"), str):
            spec.devices.append(Device(d["path"], d["path"]))
            declared.add((d.get("type"), d.get("major"), d.get("minor")))
    all_devices = False
    for e in res.get("devices") or []:
        if not isinstance(e, dict) or not e.get("allow"):
            continue
        kind = e.get("type") or "a"
        if (kind, e.get("major"), e.get("minor")) in declared:
            continue
        rule = _dev_rule(e)
        if rule == "a" or rule.startswith("a "):
            all_devices = True
        spec.device_cgroup_rules.append(rule)
    if all_devices and "CAP_SYS_ADMIN" in seen:
        spec.privileged = True
    # mounts
    binds = facts.get("binds") or {}
    skip = facts.get("skip") or ()
    for i, m in enumerate(config.get("mounts") or []):
        if not isinstance(m, dict) or i in skip:
            continue
        kind, dest = m.get("type") or "", str(m.get("destination") or "")
        if i in binds:
            # what a bind exception's :ro is matched on (dockerd 25+ writes rro, recursive, where
            # the kernel has it)
            ro = not {"ro", "rro"}.isdisjoint(_options(m))
            prop = [o for o in _options(m) if o in PROPAGATION]
            for how, host in binds[i]:
                spec.mounts.append(Mount("bind", host, dest, read_only=ro, origin=how,
                                         propagation=prop[-1] if prop else ""))
            continue
        if is_bind(m):
            continue  # Docker's own (not pinned, not judged)
        if (kind, _norm(dest)) in STANDARD_MOUNTS:
            continue
        src = m.get("source") if isinstance(m.get("source"), str) else ""
        if kind in PSEUDO_FS:
            hosts = [(f"{kind} filesystem", PSEUDO_FS[kind])]
        elif kind == "overlay":
            hosts = [("overlay of", d) for d in overlay_dirs(",".join(_options(m)))]
        elif src.startswith("/"):
            hosts = [(f"{kind or 'mount'} of", src)]
        else:
            hosts = []
        for how, host in hosts:
            spec.mounts.append(Mount("bind", host, dest, origin=how))
        if not hosts:  # a fresh filesystem: only where it is mounted matters
            spec.mounts.append(Mount("tmpfs" if kind == "tmpfs" else "volume", "", dest, origin=kind))
    return spec


# Where the judge reads, and the JSON type it must find there (absent is fine).
SHAPE = (("mounts", list), ("process", dict), ("linux", dict), ("process.capabilities", dict),
         ("linux.namespaces", list), ("linux.devices", list), ("linux.resources", dict),
         ("linux.resources.devices", list), ("linux.resources.memory", dict),
         ("linux.maskedPaths", list), ("linux.readonlyPaths", list)) + tuple(
    (f"process.capabilities.{s}", list) for s in CAP_SETS)


def shape_problems(config: dict) -> list[str]:
    """Fields the judge reads that are not of their JSON type: such a config is not judged
    (runc would refuse it too), it is refused."""
    out = []
    for path, kind in SHAPE:
        node = config
        for key in path.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None and not isinstance(node, kind):
            out.append(f"{path} must be a JSON {'array' if kind is list else 'object'}")
    for m in config.get("mounts") or []:
        if not isinstance(m, dict):
            out.append("mounts must hold objects")
            break
    return out


def _int(v) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _allows_everything(seccomp: dict) -> bool:
    """A filter that allows by default and refuses nothing is no filter."""
    if str(seccomp.get("defaultAction", "")).upper() not in ALLOW_ACTIONS:
        return False
    for s in seccomp.get("syscalls") or []:
        if isinstance(s, dict) and str(s.get("action", "")).upper() not in ALLOW_ACTIONS:
            return False
    return True


def device_nodes(config: dict) -> dict:
    """Container device path -> (type, major, minor) as the config declares it."""
    out = {}
    for d in (config.get("linux") or {}).get("devices") or []:
        if isinstance(d, dict) and isinstance(d.get("path"), str) and d.get("type") in ("c", "b", "u", "p"):
            kind = "c" if d["type"] == "u" else d["type"]
            out[d["path"]] = (kind, _int(d.get("major")), _int(d.get("minor")))
    return out


# --- the rules ----------------------------------------------------------------------------

def rules():
    """The plugin's rule objects the runtime enforces (importing their modules registers them)."""
    for mod in RULE_MODULES:
        __import__(f"authz.rules.{mod}")  # not importlib: its import costs the runtime too
    from authz.rules import REGISTRY
    return [REGISTRY[r] for r in RUNTIME_RULES if r in REGISTRY]


def judge(spec: Spec, ctx, levels, exceptions=(), applied=None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(denies, audits) as (rule id, message), worded as the plugin words them; the policy's
    exceptions (authz/exceptions.py, the plugin's matching) that applied go to `applied`."""
    from authz import exceptions as excs
    from authz.rules import finding
    denies, audits = [], []
    req = Request()
    for rule in rules():
        level = levels.get(rule.id, "off")
        if level == "off":
            continue
        try:
            problems, used = excs.check(rule, req, spec, ctx, exceptions)
            if applied is not None:
                applied += used
        except Exception as exc:  # noqa: BLE001 - a rule the runtime cannot run refuses
            problems = [f"dockguard-runtime could not evaluate this rule ({type(exc).__name__}: {exc})"]
        if problems:
            (denies if level == "deny" else audits).append((rule.id, finding(rule, problems)))
    return denies, audits


# --- the edge -----------------------------------------------------------------------------

class Refused(DockguardError):
    """The container must not start: the message names the rules (or why it cannot be judged)."""


def _ns_id(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def host_namespaces(config: dict) -> set:
    """OCI namespace types given by a path that is the host's own namespace (ours or PID 1's)."""
    out = set()
    for ns in (config.get("linux") or {}).get("namespaces") or []:
        if not isinstance(ns, dict) or not ns.get("path") or ns.get("type") not in PROC_NS:
            continue
        theirs = _ns_id(str(ns["path"]))
        proc_kind = PROC_NS[ns["type"]]
        if theirs is not None and theirs in (_ns_id(f"/proc/self/ns/{proc_kind}"),
                                             _ns_id(f"/proc/1/ns/{proc_kind}")):
            out.add(ns["type"])
    return out


def is_docker_init(pinned, mount: dict) -> bool:
    """dockerd's --init binary, as dockerd mounts it: read-only at /sbin/docker-init, from a
    file named docker-init (Debian 13's is a symlink to tini-static) that resolves to a
    root-owned executable nobody else can write. A user's bind of that shape only shows a
    host program, read-only."""
    st = pinned.st
    return (_norm(str(mount.get("destination") or "")) == "/sbin/docker-init"
            and posixpath.basename(pinned.source) == "docker-init" and "ro" in _options(mount)
            and stat.S_ISREG(st.st_mode) and st.st_uid == 0 and st.st_mode & 0o111
            and not st.st_mode & 0o022)


def pin_and_describe(config: dict, docker_root: str, real_root: str, container_id: str | None,
                     isolate: bool = False):
    """Pin every bind source; return (pinned by mount index, binds facts, skip, regular files).

    `docker_root` as dockerd names it (for its own mounts, by their exact path) and resolved
    (for what a pinned source turns out to be). `isolate`: first move into a mount namespace
    of our own (hookbin/hostpath.py), where the sources are opened and later staged."""
    from hookbin import hostpath
    mounts = config.get("mounts") or []
    pinned, binds, skip, files = {}, {}, set(), set()
    todo = bind_sources(config, docker_root, container_id)
    if not todo:
        return pinned, binds, skip, files
    if isolate:
        hostpath.private_namespace()
    table = hostpath.read_mountinfo()
    try:
        for i, src in todo:
            try:
                p = hostpath.pin(src)
            except hostpath.PinError as exc:
                exc.destination = _destination(mounts[i])
                raise
            pinned[i] = p
            if is_docker_init(p, mounts[i]):
                skip.add(i)
                continue
            entry = table.get(p.mnt_id)
            how = "bind" if p.path == src else f"bind {src} ->"
            vol = volume_name(p.path, real_root)
            if vol is not None:
                vol_top = volume_top(p.path, real_root)
                if entry is None or not hostpath.within(entry.point, vol_top):
                    binds[i] = []  # a plain local volume: Docker's own directory
                    continue
                hosts = hostpath.mount_host_paths(p.path, entry, table, avoid_under=real_root)
                what = f"volume {vol} ({entry.fstype} {entry.source})"
                binds[i] = [(what, h) for h in hosts]
                files.update(h for h in hosts if p.is_file)
                continue
            if (entry is not None and entry.point == p.path
                    and hostpath.within(p.path, f"{real_root.rstrip('/')}/tmp")):
                # dockerd 26's volume-subpath: a bind it made of a path inside a volume (its
                # "safe mount"): judged by what it shows, a plain volume's content being fine
                hosts = hostpath.mount_host_paths(p.path, entry, table, avoid_under=real_root)
                if entry.fstype in hostpath.FRESH_FS:
                    binds[i] = []  # a subpath of a tmpfs volume
                    continue
                if hosts:
                    binds[i] = [("volume subpath", h) for h in hosts
                                if volume_name(h, real_root) is None]
                    continue
            out = [(how, p.path)]
            if entry is not None and (entry.root != "/" or entry.fstype in hostpath.PSEUDO_FS):
                out += [(f"{how} (on a {entry.fstype} mount of {entry.source})", h)
                        for h in hostpath.mount_host_paths(p.path, entry, table, volume=False,
                                                           avoid_under=real_root)]
            binds[i] = out
            if p.is_file:
                files.update(h for _, h in out)
    except hostpath.PinError:
        for p in pinned.values():
            os.close(p.fd)
        raise
    return pinned, binds, skip, files


def _destination(mount) -> str:
    return str(mount.get("destination") or "?") if isinstance(mount, dict) else "?"


SOURCE_HINT = ("Safely: keep a bind source in place until its container has started (put it "
               "back and start the container again)")


def source_refusal(source: str, destination: str | None, why: str) -> str:
    """The runtime's refusal of a bind source it cannot judge or hand runc (pure)."""
    where = f" for {destination}" if destination else ""
    return f"refused: bind source {source}{where} {why}: nothing was started. {SOURCE_HINT}."


def pin_refusal(exc) -> str:
    if exc.source is None:
        return f"refused: {exc}"
    return source_refusal(exc.source, exc.destination, exc.why)


class Staged:
    """One bind source handed to runc: where config.json named it, the staging path, the pin."""
    __slots__ = ("index", "source", "destination", "path", "pinned")

    def __init__(self, index, source, destination, path, pinned):
        self.index, self.source, self.destination = index, source, destination
        self.path, self.pinned = path, pinned


def explain_failure(staged, runc_error: str | None) -> str | None:
    """Why runc failed to create, in the runtime's words, where a staged source is the cause:
    a pinned source removed since it was judged (the kernel will not mount it: runc's own
    error names only the staging path), or runc's error about a staging path, with the
    source it stands for. None: runc's own error says it."""
    from hookbin import hostpath
    gone = [s for s in staged if hostpath.removed(s.pinned)]
    if gone:
        return " ".join(source_refusal(s.source, s.destination, hostpath.GONE) for s in gone)
    lost = [s for s in staged if not os.path.lexists(s.path)]
    if lost:
        # the host removed the staging directory: the kernel then detaches mounts on it in
        # every other namespace, ours included
        return (f"not started: the staging of bind source {lost[0].source} for "
                f"{lost[0].destination} ({lost[0].path}) vanished while runc ran "
                f"({hostpath.STAGE_DIR} removed on the host?). Safely: leave "
                f"{hostpath.STAGE_DIR} in place and start the container again.")
    for s in staged:
        if runc_error and (f"{s.path}:" in runc_error or f"{s.path} " in runc_error
                           or runc_error.endswith(s.path)):
            return source_refusal(s.source, s.destination,
                                  f"could not be mounted by runc (staged as {s.path}): {runc_error}")
    return None


def selectors(docker_root: str, container_id: str | None) -> tuple[str, dict]:
    """(Config.Image, Config.Labels) from dockerd's config.v2.json, for exceptions' image and
    label selectors (the OCI config carries neither); empty when it cannot be read."""
    from hookbin import oci
    if not container_id:
        return "", {}
    try:
        doc = oci.read_json(os.path.join(docker_root, "containers", container_id, "config.v2.json"))
        cfg = doc.get("Config") or {}
    except (OSError, ValueError, AttributeError):
        return "", {}
    image, labels = cfg.get("Image"), cfg.get("Labels")
    return (image if isinstance(image, str) else "", labels if isinstance(labels, dict) else {})


def check_config(config: dict, docker_root: str, container_id: str | None, policy,
                 isolate: bool = False, applied=None):
    """Judge one config: (pinned sources, denies, audits). Pinned fds are left open."""
    from hookbin import hostpath
    root = os.path.realpath(docker_root)
    try:
        pinned, binds, skip, files = pin_and_describe(config, docker_root, root, container_id, isolate)
    except hostpath.PinError as exc:
        raise Refused(pin_refusal(exc)) from None
    facts = {"host_ns": host_namespaces(config), "binds": binds, "skip": skip,
             "cgroup2": os.path.exists("/sys/fs/cgroup/cgroup.controllers")}
    spec = spec_from_config(config, facts)
    ctx = StaticContext(policy.lists, root, frozenset(files), device_nodes(config))
    exceptions = getattr(policy, "exceptions", ())
    if any(e.image or e.label for e in exceptions):
        spec.image, spec.labels = selectors(docker_root, container_id)
    denies, audits = judge(spec, ctx, policy.levels, exceptions, applied)
    return pinned, denies, audits


def rewrite_sources(config: dict, staged: dict) -> dict:
    """A copy of `config` whose bind sources at the given indexes are the staged paths (pure)."""
    out = dict(config)
    mounts = [dict(m) if isinstance(m, dict) else m for m in config.get("mounts") or []]
    for i, path in staged.items():
        mounts[i]["source"] = path
    out["mounts"] = mounts
    return out


def check_bundle(bundle: str, docker_root: str, container_id: str | None,
                 policy_path: str | None, audit=None, staged: list | None = None) -> int:
    """Judge the bundle's config.json; refuse (Refused) or pin its bind sources in place.

    On success with binds, this process is in a mount namespace of its own where each judged
    source is bind-mounted on a staging path config.json now names: run runc next, from here.
    `staged`: a list that receives a Staged per source, its pin left open (close-on-exec) for
    explain_failure; otherwise the pins are closed."""
    from hookbin import hostpath, oci, rtpolicy
    try:
        policy = rtpolicy.load(policy_path, RUNTIME_RULES)
    except rtpolicy.PolicyError as exc:
        raise Refused(f"every container is refused while the policy cannot be used: {exc}") from None
    if not os.path.isdir(os.path.join(docker_root, "containers")):
        # Docker's own mounts are known by their paths under it: a wrong root would judge them
        raise Refused(f"docker root {docker_root!r} has no containers/ directory: is --docker-root right?")
    config_path = os.path.join(bundle, "config.json")
    try:
        config = oci.read_json(config_path)
    except (OSError, ValueError) as exc:
        raise Refused(f"cannot read {config_path}: {exc}") from None
    if not isinstance(config, dict):
        raise Refused(f"{config_path} is not a JSON object")
    shape = shape_problems(config)
    if shape:
        raise Refused(f"{config_path} cannot be judged: {'; '.join(shape)}")
    applied = []
    try:
        pinned, denies, audits = check_config(config, docker_root, container_id, policy, isolate=True,
                                              applied=applied)
    except Refused:
        raise
    except Exception as exc:  # noqa: BLE001 - a config that cannot be judged does not run
        raise Refused(f"cannot judge {config_path} ({type(exc).__name__}: {exc}): refused") from None
    if applied and audit is not None:
        audit(f"exceptions applied (policy: {policy.source}): {', '.join(dict.fromkeys(applied))}")
    for _rid, text in audits:
        if audit is not None:
            audit(f"audit (policy: {policy.source}): {text}")
    if denies:
        for p in pinned.values():
            os.close(p.fd)
        raise Refused(f"refused (policy: {policy.source}): " + " ".join(t for _, t in denies))
    if pinned:
        mounts = config.get("mounts") or []
        keep = False
        try:
            directory = hostpath.stage_dir()
            paths = {}
            for i, p in pinned.items():
                try:
                    paths[i] = hostpath.stage(p, str(i), directory)
                except hostpath.PinError as exc:
                    exc.destination = _destination(mounts[i])
                    raise
            # a source removed while it was staged is refused here, not by runc's mount
            for i, p in pinned.items():
                if hostpath.removed(p):
                    raise Refused(source_refusal(p.source, _destination(mounts[i]), hostpath.GONE))
            oci.write_json_atomic(config_path, rewrite_sources(config, paths), durable=False)
            if staged is not None:
                staged += [Staged(i, p.source, _destination(mounts[i]), paths[i], p)
                           for i, p in pinned.items()]
                keep = True
        except hostpath.PinError as exc:
            raise Refused(pin_refusal(exc) if exc.source else f"refused: cannot pin the bind sources: {exc}") from None
        finally:
            if not keep:
                for p in pinned.values():
                    os.close(p.fd)
    return len(pinned)
