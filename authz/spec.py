"""Request bodies -> one plain `Spec` that every rule reads, whatever the route.

A container create, a `docker update`, an exec, a swarm service and an old-API start all
carry some of the same settings. Normalising them once means each rule is written once
and sees the same thing dockerd will apply.

A create body, and an old-API (< 1.24) start body, is decoded by dockerd (20.10 and 26, same
code: runconfig.ContainerConfigWrapper) into a wrapper holding a `*HostConfig` pointer under
the key "HostConfig" *and* the HostConfig's fields embedded at the top level. dockerd applies
the "HostConfig" object when one is there (a later `"HostConfig": null` sets the pointer back to
nil, and an object after that starts afresh), and the top-level fields only when it is not;
of the top-level fields next to a HostConfig object it copies just Memory, MemorySwap,
CPUShares, CpusetCpus and VolumeDriver, which no rule reads. `host_config_of` picks exactly
the object dockerd applies.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from . import gojson as g
from .gojson import Obj

NAMESPACE_FIELDS = (("pid", "pidmode"), ("ipc", "ipcmode"), ("net", "networkmode"),
                    ("uts", "utsmode"), ("userns", "usernsmode"), ("cgroupns", "cgroupnsmode"))


@dataclass(slots=True)
class Mount:
    kind: str  # bind, volume, tmpfs, npipe
    source: str
    target: str
    read_only: bool = False
    driver: str = ""
    driver_opts: dict[str, str] = field(default_factory=dict)
    origin: str = "Mounts"  # Binds, Mounts, service, volume
    propagation: str = ""  # a bind's mount propagation as asked (shared, rslave, ...); "" = default


@dataclass(slots=True)
class Device:
    host: str
    container: str
    perms: str = "rwm"


@dataclass(slots=True)
class Spec:
    """Plain data the rules read. Empty/zero means 'not asked for'."""

    privileged: bool = False
    namespaces: dict[str, list[str]] = field(default_factory=dict)  # kind -> modes asked
    cap_add: list[str] = field(default_factory=list)
    capabilities: list[str] | None = None
    security_opt: list[str] = field(default_factory=list)
    selinux_disabled: bool = False
    masked_paths: list[list[str]] = field(default_factory=list)   # each given list
    readonly_paths: list[list[str]] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    device_cgroup_rules: list[str] = field(default_factory=list)
    kernel_memory: int = 0
    kernel_memory_tcp: int = 0
    blkio_weight: int = 0
    blkio_weight_device: list[str] = field(default_factory=list)  # device paths
    auto_remove: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    tty: bool = False
    open_stdin: bool = False
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    image: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    health_test: list[str] | None = None
    health_options: dict[str, int] = field(default_factory=dict)
    user: str = ""
    name: str = ""
    networks: list[str] = field(default_factory=list)  # service network targets
    volumes_from: list[str] = field(default_factory=list)  # container[:ro|rw]
    annotations: dict[str, str] = field(default_factory=dict)  # HostConfig.Annotations (API >= 1.43)
    runtime: str = ""  # HostConfig.Runtime; "" = the daemon's default runtime
    # Limits and restart policy (read by the CIS profile, authz/rules/cis.py); 0 = none given
    memory: int = 0
    cpu_shares: int = 0
    nano_cpus: int = 0
    cpu_quota: int = 0
    pids_limit: int = 0   # null, 0 and -1 all mean unlimited
    readonly_rootfs: bool = False
    restart_policy: str = ""  # RestartPolicy.Name
    restart_max: int = 0      # RestartPolicy.MaximumRetryCount
    restart_given: bool = False  # the body carries a RestartPolicy (an update changes it)
    apparmor_profile: str | None = None  # an existing container's AppArmorProfile; None: a request


def _host_config_into(spec: Spec, hc: Obj | None, path: str) -> None:
    if hc is None:
        return
    spec.privileged |= g.boolean(hc, "privileged", path)
    for kind, fname in NAMESPACE_FIELDS:
        mode = g.string(hc, fname, path)
        if mode:
            spec.namespaces.setdefault(kind, []).append(mode)
    spec.cap_add += g.strings(hc, "capadd", path, strslice=True) or []
    # HostConfig.Capabilities (API 1.40, Docker 19.03) is not a field of dockerd 20.10 or 26:
    # Go ignores it there, checked, so it is not read (a request carrying it is not refused).
    spec.security_opt += g.strings(hc, "securityopt", path) or []
    for fname, dest in (("maskedpaths", spec.masked_paths), ("readonlypaths", spec.readonly_paths)):
        v = g.strings(hc, fname, path)
        if v is not None:
            dest.append(v)
    for b in g.strings(hc, "binds", path) or []:
        spec.mounts.append(parse_bind(b))
    spec.mounts += _mounts(hc, path)
    for d in g.objects(hc, "devices", path):
        spec.devices.append(Device(g.string(d, "pathonhost", path + ".Devices"),
                                   g.string(d, "pathincontainer", path + ".Devices"),
                                   g.string(d, "cgrouppermissions", path + ".Devices") or "rwm"))
    spec.device_cgroup_rules += g.strings(hc, "devicecgrouprules", path) or []
    spec.volumes_from += g.strings(hc, "volumesfrom", path) or []
    _resources_into(spec, hc, path)
    spec.auto_remove |= g.boolean(hc, "autoremove", path)
    for t in g.string_map(hc, "tmpfs", path):
        spec.mounts.append(Mount("tmpfs", "", t, origin="Tmpfs"))
    spec.annotations.update(g.string_map(hc, "annotations", path))
    spec.runtime = g.string(hc, "runtime", path) or spec.runtime
    spec.readonly_rootfs |= g.boolean(hc, "readonlyrootfs", path)
    _restart_into(spec, hc, path)


def host_config_of(body: Obj) -> tuple[Obj | None, str]:
    """The HostConfig dockerd applies from a create (or old-API start) body, and its path in
    messages: the "HostConfig" object if the pointer ends up set, else the top level."""
    inner = g.pointer_obj(body, "hostconfig", "")
    if inner is not None:
        return inner, "HostConfig"
    return body, ""


def _resources_into(spec: Spec, o: Obj, path: str) -> None:
    spec.kernel_memory = spec.kernel_memory or g.integer(o, "kernelmemory", path)
    spec.kernel_memory_tcp = spec.kernel_memory_tcp or g.integer(o, "kernelmemorytcp", path)
    spec.blkio_weight = spec.blkio_weight or g.integer(o, "blkioweight", path)
    spec.memory = spec.memory or g.integer(o, "memory", path)
    spec.cpu_shares = spec.cpu_shares or g.integer(o, "cpushares", path)
    spec.nano_cpus = spec.nano_cpus or g.integer(o, "nanocpus", path)
    spec.cpu_quota = spec.cpu_quota or g.integer(o, "cpuquota", path)
    spec.pids_limit = spec.pids_limit or g.integer(o, "pidslimit", path)
    for wd in g.objects(o, "blkioweightdevice", path):
        spec.blkio_weight_device.append(g.string(wd, "path", path + ".BlkioWeightDevice"))


def _restart_into(spec: Spec, o: Obj, path: str) -> None:
    rp = g.obj(o, "restartpolicy", path)
    if rp is not None:
        spec.restart_given = True
        spec.restart_policy = g.string(rp, "name", path + ".RestartPolicy")
        spec.restart_max = g.integer(rp, "maximumretrycount", path + ".RestartPolicy")


def _mounts(o: Obj, path: str, origin: str = "Mounts") -> list[Mount]:
    out = []
    for m in g.objects(o, "mounts", path):
        p = path + ".Mounts"
        vo = g.obj(m, "volumeoptions", p)
        dc = g.obj(vo, "driverconfig", p + ".VolumeOptions")
        out.append(Mount(
            kind=g.string(m, "type", p).lower(),
            source=g.string(m, "source", p),
            target=g.string(m, "target", p),
            read_only=g.boolean(m, "readonly", p),
            driver=g.string(dc, "name", p),
            driver_opts=g.string_map(dc, "options", p),
            origin=origin,
            propagation=g.string(g.obj(m, "bindoptions", p), "propagation", p + ".BindOptions"),
        ))
    return out


MOUNT_MODES = frozenset({"ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave",
                         "private", "rprivate", "delegated", "cached", "consistent"})


PROPAGATION_MODES = frozenset({"shared", "rshared", "slave", "rslave", "private", "rprivate"})


def parse_bind(spec: str) -> Mount:
    """A `-v` string as dockerd's Linux parser splits it (src:dst[:mode])."""
    parts = spec.split(":")
    mode = ""
    if len(parts) == 1:
        src, dst = "", parts[0]
    elif len(parts) == 2:
        if all(x in MOUNT_MODES for x in parts[1].split(",")) and parts[1]:
            src, dst, mode = "", parts[0], parts[1]
        else:
            src, dst = parts
    else:
        src, dst, mode = parts[0], parts[1], ":".join(parts[2:])
    ro = "ro" in mode.split(",")
    kind = "bind" if src.startswith("/") or src.startswith(".") else "volume"
    prop = [m for m in mode.split(",") if m in PROPAGATION_MODES]
    return Mount(kind, src, dst, ro, origin="Binds", propagation=prop[-1] if prop else "")


def _config_into(spec: Spec, c: Obj, path: str) -> None:
    spec.attach_stdin |= g.boolean(c, "attachstdin", path)
    spec.attach_stdout |= g.boolean(c, "attachstdout", path)
    spec.attach_stderr |= g.boolean(c, "attachstderr", path)
    spec.tty |= g.boolean(c, "tty", path)
    spec.open_stdin |= g.boolean(c, "openstdin", path)
    spec.cmd = g.strings(c, "cmd", path, strslice=True)
    spec.entrypoint = g.strings(c, "entrypoint", path, strslice=True)
    spec.image = g.string(c, "image", path)
    spec.labels = g.string_map(c, "labels", path)
    spec.user = g.string(c, "user", path)
    _health_into(spec, g.obj(c, "healthcheck", path), path + ".Healthcheck")
    for v in g.string_map_keys(c, "volumes", path):
        spec.mounts.append(Mount("volume", "", v, origin="Volumes"))


# Every option of dockerd's HealthConfig besides Test (StartInterval since API 1.44).
HEALTH_OPTIONS = ("interval", "timeout", "startperiod", "startinterval", "retries")


def _health_into(spec: Spec, hc: Obj | None, path: str) -> None:
    if hc is None:
        return
    spec.health_test = g.strings(hc, "test", path)
    for opt in HEALTH_OPTIONS:
        v = g.integer(hc, opt, path)
        if v:
            spec.health_options[opt] = v


def from_create(body, name: str = "") -> Spec:
    if not isinstance(body, Obj):
        raise g.BodyError("container create body must be a JSON object")
    spec = Spec(name=name)
    _config_into(spec, body, "")
    hc, where = host_config_of(body)
    _host_config_into(spec, hc, where)
    if where:  # dockerd copies the top level's Memory and CPUShares into a HostConfig without them
        spec.memory = spec.memory or g.integer(body, "memory")
        spec.cpu_shares = spec.cpu_shares or g.integer(body, "cpushares")
    nc = g.obj(body, "networkingconfig")
    for ep_name in g.string_map_keys(nc, "endpointsconfig", "NetworkingConfig"):
        spec.networks.append(ep_name)
    return spec


def from_host_config(body) -> Spec:
    """An old-API (< 1.24) start body: a HostConfig dockerd still applies, given at the top
    level or under "HostConfig" (dockerd decodes it with the create body's wrapper); it
    replaces the container's whole HostConfig."""
    if not isinstance(body, Obj):
        raise g.BodyError("start body must be a JSON object")
    spec = Spec()
    _host_config_into(spec, *host_config_of(body))
    return spec


def from_update(body) -> Spec:
    if not isinstance(body, Obj):
        raise g.BodyError("update body must be a JSON object")
    spec = Spec()
    _resources_into(spec, body, "")
    _restart_into(spec, body, "")
    for d in g.objects(body, "devices"):
        spec.devices.append(Device(g.string(d, "pathonhost", "Devices"), "", g.string(d, "cgrouppermissions", "Devices")))
    spec.device_cgroup_rules += g.strings(body, "devicecgrouprules") or []
    return spec


def from_exec(body) -> Spec:
    if not isinstance(body, Obj):
        raise g.BodyError("exec body must be a JSON object")
    spec = Spec()
    spec.privileged = g.boolean(body, "privileged")
    spec.user = g.string(body, "user")
    spec.tty = g.boolean(body, "tty")
    spec.attach_stdin = g.boolean(body, "attachstdin")
    spec.cmd = g.strings(body, "cmd", strslice=True)
    return spec


def from_service(body) -> Spec:
    """A swarm ServiceSpec: the container settings under TaskTemplate.ContainerSpec."""
    if not isinstance(body, Obj):
        raise g.BodyError("service body must be a JSON object")
    spec = Spec()
    tt = g.obj(body, "tasktemplate")
    cs = g.obj(tt, "containerspec", "TaskTemplate")
    p = "TaskTemplate.ContainerSpec"
    if cs is not None:
        spec.image = g.string(cs, "image", p)
        spec.cmd = g.strings(cs, "command", p)
        spec.user = g.string(cs, "user", p)
        spec.labels = g.string_map(cs, "labels", p)
        spec.tty = g.boolean(cs, "tty", p)
        spec.open_stdin = g.boolean(cs, "openstdin", p)
        spec.cap_add += g.strings(cs, "capabilityadd", p) or []
        spec.mounts += _mounts(cs, p, origin="service")
        priv = g.obj(cs, "privileges", p)
        se = g.obj(priv, "selinuxcontext", p + ".Privileges")
        spec.selinux_disabled = g.boolean(se, "disable", p + ".Privileges.SELinuxContext")
        se_type = g.string(se, "type", p + ".Privileges.SELinuxContext")
        if se_type:
            spec.security_opt.append(f"label=type:{se_type}")
        seccomp = g.obj(priv, "seccomp", p + ".Privileges")
        mode = g.string(seccomp, "mode", p + ".Privileges.Seccomp").lower()
        if mode == "unconfined":
            spec.security_opt.append("seccomp=unconfined")
        elif mode == "custom":  # Profile is a Go []byte: base64 in JSON
            raw = g.string(seccomp, "profile", p + ".Privileges.Seccomp")
            try:
                text = base64.b64decode(raw, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                raise g.BodyError(f"{p}.Privileges.Seccomp.Profile must be base64") from None
            spec.security_opt.append("seccomp=" + text)
        apparmor = g.obj(priv, "apparmor", p + ".Privileges")
        if g.string(apparmor, "mode", p + ".Privileges.AppArmor").lower() == "disabled":
            spec.security_opt.append("apparmor=unconfined")
        _health_into(spec, g.obj(cs, "healthcheck", p), p + ".Healthcheck")
    for n in g.objects(tt, "networks", "TaskTemplate"):
        spec.networks.append(g.string(n, "target", "TaskTemplate.Networks"))
    for n in g.objects(body, "networks"):
        spec.networks.append(g.string(n, "target", "Networks"))
    return spec
