"""The `cis` profile's rules: CIS Docker Benchmark section 5 checks beyond the guide.

Registered `off`: only the `cis` profile (authz/cis_policy.toml, `profile = "cis"`) turns
them on, so the guide's policy is unchanged. Ids follow the benchmark's numbering as
docker-bench-security v1.6 prints it (`cis-capabilities` is its check 5.4); docs/cis.md
maps them to the older (1.2/1.3) numbering too. Each check reads what dockerd will apply
(the create body, a `docker update`, an old-API start body, or an existing container's
inspect data through authz/existing.py), and what the daemon reports about itself
(`docker info` SecurityOptions: AppArmor, SELinux, daemon-wide no-new-privileges).
"""
from __future__ import annotations

from . import rule
from .capabilities import normalise
from .mounts import norm
from .security import split_opt

CREATE = ("container.create", "container.start")  # start: an old-API body replaces HostConfig
LIMITS = CREATE + ("container.update",)

# moby oci/caps/defaults.go: what every container gets unless --cap-drop'ped.
DOCKER_DEFAULT_CAPS = frozenset({
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"})
MAX_RESTARTS = 5
ROOT_NAMES = frozenset({"root", "0"})


def _listed(ctx, name: str) -> frozenset:
    return getattr(ctx.lists, name, frozenset()) or frozenset()


@rule("cis-capabilities", actions=CREATE,
      reason="a capability beyond Docker's default set widens what a compromised container "
             "can do to the host (CIS Docker 5.4)",
      hint="drop the --cap-add, or list the capability in the policy's "
           "lists.allowed_capabilities once you have checked the workload needs it")
def capabilities(spec, facts):
    allowed = {normalise(c) for c in _listed(facts, "allowed_capabilities")}
    out = []
    for cap in list(spec.cap_add) + list(spec.capabilities or ()):
        c = normalise(cap)
        if c == "ALL" or (c not in DOCKER_DEFAULT_CAPS and c not in allowed):
            out.append(f"--cap-add {cap}")
    return out


@rule("cis-devices", actions=LIMITS,
      reason="a host device handed to a container bypasses its isolation from the host's "
             "hardware (CIS Docker 5.18)",
      hint="pass no --device, or list the device's host path in the policy's "
           "lists.allowed_devices once you have checked the workload needs it")
def devices(spec, facts):
    allowed = {norm(p) for p in _listed(facts, "allowed_devices")}
    out = []
    for d in spec.devices:
        host = d.host
        if not host:
            continue
        if norm(host) in allowed:  # as listed: the operator named this path
            continue
        out.append(f"--device {host}")
    return out


@rule("cis-mount-propagation", actions=CREATE,
      reason="a shared mount propagates the container's mounts back to the host and the "
             "host's into the container (CIS Docker 5.20)",
      hint="leave bind propagation at its default (rprivate), or use slave/rslave to see the "
           "host's later mounts without sharing the container's")
def mount_propagation(spec, facts):
    return [f"{m.kind} {m.source or '(anonymous)'}:{m.target} with {m.propagation} propagation"
            for m in spec.mounts if (m.propagation or "").lower() in ("shared", "rshared")]


def _restart(spec, req) -> tuple[str, int] | None:
    """(name, max retries) of the restart policy dockerd will apply, None if this request
    does not set one (an update without --restart keeps the container's)."""
    if req.action == "container.update" and not spec.restart_given:
        return None
    return (spec.restart_policy or "").strip().lower(), spec.restart_max


@rule("cis-restart-on-failure", actions=LIMITS,
      reason="a container restarted without bound on failure can loop for ever and starve "
             "the host (CIS Docker 5.15: on-failure with at most 5 retries)",
      hint=f"--restart on-failure:{MAX_RESTARTS} (or fewer retries), or --restart no")
def restart_on_failure(spec, facts):
    r = _restart(spec, facts.request)
    if r and r[0] == "on-failure" and (r[1] <= 0 or r[1] > MAX_RESTARTS):
        n = "no maximum (retries for ever)" if r[1] <= 0 else f"{r[1]} retries"
        return [f"--restart on-failure with {n}"]


@rule("cis-restart-always", actions=LIMITS,
      reason="a container that is always restarted, whatever its exit, never stops failing "
             "(CIS Docker 5.15; enable this rule where the policy allows only bounded restarts)",
      hint=f"--restart on-failure:{MAX_RESTARTS}, or --restart no")
def restart_always(spec, facts):
    r = _restart(spec, facts.request)
    if r and r[0] in ("always", "unless-stopped"):
        return [f"--restart {r[0]}"]


def _update_removes(req, key: str) -> bool:
    """An update whose body sets `key` to <= 0 (dockerd: unlimited), null meaning unchanged."""
    from .. import gojson as g
    body = req.body()
    if not isinstance(body, g.Obj) or body.get(key) is None:
        return False
    return g.integer(body, key) <= 0


@rule("cis-memory", actions=CREATE,
      reason="a container without a memory limit can exhaust the host's memory "
             "(CIS Docker 5.11)",
      hint="give it a limit: --memory 512m (and --memory-swap)")
def memory(spec, facts):
    if spec.memory <= 0:
        return ["no memory limit (--memory)"]


@rule("cis-cpu", actions=LIMITS,
      reason="a container without CPU shares or a CPU limit competes for the host's CPUs "
             "on equal terms with everything else (CIS Docker 5.12)",
      hint="--cpus 1.5 (or --cpu-shares 512); --cpu-quota alone is not what the benchmark "
           "checks")
def cpu(spec, facts):
    if facts.request.action == "container.update":
        # CpuQuota -1 lifts the quota --cpus set, while inspect still shows NanoCpus (checked)
        if spec.cpu_quota < 0:
            return [f"docker update --cpu-quota {spec.cpu_quota} lifting the CPU limit"]
        return None
    if spec.cpu_shares == 0 and spec.nano_cpus == 0:
        extra = " (only --cpu-quota)" if spec.cpu_quota > 0 else ""
        return [f"no --cpus or --cpu-shares{extra}"]


@rule("cis-pids-limit", actions=LIMITS,
      reason="a container without a pids limit can fork-bomb the host (CIS Docker 5.29)",
      hint="--pids-limit 200 (a positive number)")
def pids_limit(spec, facts):
    if facts.request.action == "container.update":
        if _update_removes(facts.request, "pidslimit"):
            return ["docker update --pids-limit removing the limit"]
        return None
    if spec.pids_limit <= 0:
        return ["no pids limit (--pids-limit)"]


@rule("cis-read-only-rootfs", actions=CREATE,
      reason="a writable root filesystem lets an intruder change the container's programs "
             "(CIS Docker 5.13)",
      hint="--read-only, with a --tmpfs or a volume for each path the workload writes")
def read_only_rootfs(spec, facts):
    if not spec.readonly_rootfs:
        return ["root filesystem writable (no --read-only)"]


def _security_options(ctx) -> frozenset[str]:
    return frozenset(ctx.daemon_security_options())


@rule("cis-no-new-privileges", actions=CREATE,
      reason="without no-new-privileges a process in the container can gain privileges "
             "through setuid or file-capability programs (CIS Docker 5.26)",
      hint="--security-opt no-new-privileges (or start dockerd with --no-new-privileges)")
def no_new_privileges(spec, facts):
    value = None
    for o in spec.security_opt:
        k, v = split_opt(o)
        if k == "no-new-privileges":
            value = v.lower() in ("", "true")  # dockerd: the last one wins
    if value:
        return None
    if value is None and "name=no-new-privileges" in _security_options(facts):
        return None  # daemon-wide, and not turned off for this container
    return ["--security-opt no-new-privileges=false" if value is False
            else "no --security-opt no-new-privileges"]


@rule("cis-apparmor", actions=CREATE,
      reason="on a host with AppArmor a container without a profile runs unconfined "
             "(CIS Docker 5.2)",
      hint="keep Docker's docker-default profile, or name a loaded one "
           "(--security-opt apparmor=PROFILE)")
def apparmor(spec, facts):
    if "name=apparmor" not in _security_options(facts):
        return None  # the host (or dockerd) has no AppArmor: nothing to apply
    out = []
    for o in spec.security_opt:
        k, v = split_opt(o)
        if k == "apparmor" and v.lower() == "unconfined":
            out.append(f"--security-opt {o}")
    profile = getattr(spec, "apparmor_profile", None)  # an existing container's
    if profile is not None and profile.strip().lower() in ("", "unconfined") and not out:
        out.append(f"AppArmorProfile {profile!r}")
    return out


@rule("cis-selinux", actions=CREATE,
      reason="on a host with SELinux a container without security options runs with the "
             "daemon's defaults, unreviewed (CIS Docker 5.3)",
      hint="give the container its SELinux label: --security-opt label=level:s0:c100,c200 "
           "(or label=type:...); never label=disable")
def selinux(spec, facts):
    if "name=selinux" not in _security_options(facts):
        return None
    labels = [v for o in spec.security_opt for k, v in [split_opt(o)] if k == "label"]
    if not any(v and not v.lower().startswith("disable") for v in labels):
        return ["no --security-opt label=..."]


@rule("cis-healthcheck", actions=("container.create",),
      reason="a container without a health check fails unnoticed (CIS Docker 5.27)",
      hint="give it a HEALTHCHECK (in the image, or --health-cmd), or dockguard's health "
           "labels (dockguard.health.cmd / tcp / http)")
def healthcheck(spec, facts):
    test = spec.health_test
    if test and test[0].upper() != "NONE":
        return None
    from .hooks import merged_labels  # here: dockguard-runtime imports this module on every start
    if any(k.startswith("dockguard.health.") for k in merged_labels(spec, facts)):
        return None
    if test and test[0].upper() == "NONE":
        return ["--no-healthcheck"]
    if spec.image:  # the image's HEALTHCHECK applies when the request gives none
        image_test = ((facts.image_config(spec.image) or {}).get("Healthcheck") or {}).get("Test")
        if isinstance(image_test, list) and image_test and str(image_test[0]).upper() != "NONE":
            return None
    return ["no health check (no HEALTHCHECK, --health-cmd or dockguard.health.* labels)"]


@rule("cis-exec-root", actions=("exec.create",),
      reason="docker exec as root bypasses the user the container was made to run as "
             "(CIS Docker 5.24)",
      hint="docker exec as the container's own user (no -u root / -u 0)")
def exec_root(spec, facts):
    name = (spec.user or "").split(":", 1)[0].strip()
    if name in ROOT_NAMES:
        return [f"docker exec -u {spec.user}"]
