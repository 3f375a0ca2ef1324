"""The OCI runtime a container runs under (HostConfig.Runtime, `docker run --runtime`).

A host that relies on a runtime wrapper (dockguard-runtime: daemon-wide hook-spec, bind
sources judged at every start) loses it for any container created with another runtime, e.g.
`--runtime runc`. With `[lists] runtimes` set, only those runtimes are allowed; a container
that names none gets the daemon's default-runtime, which is looked up and judged the same way.
Checked at create and at an old-API (< 1.24) start with a body, which replaces the HostConfig.
"""
from __future__ import annotations

from . import rule


@rule("runtime", actions=("container.create", "container.start"),
      reason="a container under another runtime skips the hook runtime the host relies on "
             "(its daemon-wide hooks and checks at every start)",
      hint="name a runtime of the policy's runtimes list (--runtime dockguard); without "
           "--runtime the daemon's default-runtime is used, and it must be in that list too")
def runtime(spec, facts):
    allowed = facts.lists.runtimes
    if not allowed:
        return None
    if spec.runtime:
        if spec.runtime not in allowed:
            return [f"--runtime {spec.runtime}"]
        return None
    default = facts.default_runtime()
    if default not in allowed:
        return [f"the daemon's default runtime {default!r} (no --runtime given)"]
    return None
