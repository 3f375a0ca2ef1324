"""Container annotations (HostConfig.Annotations, API >= 1.43, `docker create --annotation`).

dockerd copies every annotation into the OCI config.json, where the runtime acts on some:
runc's systemd cgroup driver turns `org.systemd.property.*` into unit properties
(DeviceAllow=, ...), dockguard-runtime reads `dockguard.hook-spec`, other runtimes have their
own (crun `run.oci.*`). So an annotation is allowed only when the policy lists its key
(`[lists] annotations`: exact keys, or prefixes written `com.example.*`); `dockguard.hook-spec`
is always allowed and validated exactly as the label is; `org.systemd.property.*` is always
refused.
"""
from __future__ import annotations

from . import rule
from .hooks import LABEL as HOOK_SPEC, check_hook_spec

SYSTEMD_PREFIX = "org.systemd.property."
MIN_API = (1, 43)  # dockerd ignores Annotations below it (26: dropped; 20.10: no such field)


def allowed_key(key: str, allow: frozenset[str]) -> bool:
    if key in allow:
        return True
    return any(a.endswith(".*") and key.startswith(a[:-1]) for a in allow)


@rule("annotations", actions=("container.create",),
      reason="annotations reach the OCI runtime, which acts on some of them (runc turns "
             "org.systemd.property.* into systemd unit properties such as DeviceAllow=)",
      hint="drop the annotation, use a label for metadata, or have the administrator list the "
           "key in the policy ([lists] annotations); a hook-spec annotation must be a valid spec")
def annotations(spec, facts):
    if not spec.annotations or facts.request.api_below(MIN_API):
        return None
    out = []
    for key in sorted(spec.annotations):
        value = spec.annotations[key]
        if key == HOOK_SPEC:
            out += [f"annotation {HOOK_SPEC}: {p}" for p in check_hook_spec(value, facts)]
        elif key.lower().startswith(SYSTEMD_PREFIX):
            out.append(f"annotation {key!r} (a systemd unit property for the container's cgroup)")
        elif not allowed_key(key, facts.lists.annotations):
            out.append(f"annotation {key!r} (not in the policy's annotations list)")
    return out
