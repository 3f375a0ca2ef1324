"""Beyond the guide: managed plugins that ask for host privileges, and turning the
authorization plugin itself off through the API it guards."""
from __future__ import annotations

from . import rule
from .capabilities import normalise
from .mounts import sensitive_match
from .. import gojson as g


def _privileges(body) -> list[tuple[str, list[str]]]:
    if not isinstance(body, list):
        raise g.BodyError("plugin privileges must be a JSON list")
    out = []
    for item in body:
        if not isinstance(item, g.Obj):
            raise g.BodyError("each plugin privilege must be an object")
        out.append((g.string(item, "name").strip().lower(), g.strings(item, "value") or []))
    return out


@rule("plugin-privileges", actions=("plugin.pull", "plugin.upgrade", "plugin.create", "plugin.set"),
      reason="a plugin granted host networking, host PID, devices, capabilities or host mounts "
             "runs with the host's power outside every container rule",
      hint="install only plugins that need no host privileges, or review and install them "
           "out of band with this rule set to audit")
def plugin_privileges(spec, facts):
    if facts.request.action == "plugin.create":
        return ["docker plugin create (its config cannot be inspected: it arrives as a tar)"]
    body = facts.request.body()
    if facts.request.action == "plugin.set":
        if not isinstance(body, list) or not all(isinstance(x, str) for x in body):
            raise g.BodyError("plugin set body must be a list of KEY=VALUE strings")
        out = []
        for kv in body:
            key, _, value = kv.partition("=")
            k = key.strip().lower()
            if (k.endswith(".source") or k.endswith(".path")) and value:
                s = sensitive_match(value, facts)
                if s:
                    out.append(f"plugin set {kv} (sensitive: {s})")
        return out
    out = []
    for name, values in _privileges(body):
        if name == "network":
            out += [f"network: {v}" for v in values if v.strip().lower() == "host"]
        elif name in ("host pid", "host ipc", "allow-all-devices", "device"):
            out.append(f"{name}: {', '.join(values)}")
        elif name == "capabilities":
            dangerous = facts.lists.dangerous_capabilities
            out += [f"capability {v}" for v in values
                    if normalise(v) == "ALL" or normalise(v) in dangerous]
        elif name == "mount":
            out += [f"mount {v}" for v in values if sensitive_match(v, facts)]
    return out


@rule("plugin-self-protect", actions=("plugin.disable", "plugin.remove", "plugin.upgrade",
                                      "plugin.set", "plugin.push"),
      reason="disabling or replacing an authorization plugin through the API removes the "
             "guard it provides",
      hint="change authorization plugins in the daemon configuration, as root on the host")
def plugin_self_protect(spec, facts):
    name = facts.request.name
    base = name.split(":", 1)[0]
    if base in facts.self_names() or name in facts.self_names():
        return [f"{facts.request.action} {name} (dockguard itself)"]
    info = facts.plugin(name)
    if info is None:
        return None  # no such plugin: dockerd answers 404 itself
    types = ((info.get("Config") or {}).get("Interface") or {}).get("Types") or []
    if any("authz" in str(t) for t in types):
        return [f"{facts.request.action} {name} (an authorization plugin)"]
