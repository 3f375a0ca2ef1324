"""Method + path -> a named action, as dockerd's router (gorilla/mux) matches them.

One table, compiled once. `{name:.*}` is greedy in mux, so it is here. Paths are already
decoded, cleaned and stripped of the `/vX.Y` prefix by `request.split_uri`.
"""
from __future__ import annotations

import re

# (method, pattern, action); first match wins, in the order dockerd registers them.
TABLE: tuple[tuple[str, str, str], ...] = (
    ("GET", "/_ping", "read"),
    ("HEAD", "/_ping", "read"),
    ("GET", "/containers/json", "read"),
    ("GET", "/containers/{name}/attach/ws", "container.attach"),  # judged as an attach
    ("GET", "/containers/{name}/archive", "container.archive_get"),  # copies reach its mounts
    ("HEAD", "/containers/{name}/archive", "container.archive_head"),
    ("POST", "/containers/create", "container.create"),
    ("POST", "/containers/prune", "container.prune"),
    ("POST", "/containers/{name}/start", "container.start"),
    ("POST", "/containers/{name}/stop", "container.stop"),
    ("POST", "/containers/{name}/restart", "container.restart"),
    ("POST", "/containers/{name}/kill", "container.kill"),
    ("POST", "/containers/{name}/pause", "container.pause"),
    ("POST", "/containers/{name}/unpause", "container.unpause"),
    ("POST", "/containers/{name}/rename", "container.rename"),
    ("POST", "/containers/{name}/update", "container.update"),
    ("POST", "/containers/{name}/exec", "exec.create"),
    ("POST", "/containers/{name}/wait", "container.wait"),
    ("POST", "/containers/{name}/attach", "container.attach"),
    ("POST", "/containers/{name}/resize", "container.resize"),
    ("POST", "/containers/{name}/copy", "container.copy"),
    ("PUT", "/containers/{name}/archive", "container.archive_put"),
    ("DELETE", "/containers/{name}", "container.delete"),
    ("POST", "/exec/{name}/start", "exec.start"),
    ("POST", "/exec/{name}/resize", "exec.resize"),
    ("POST", "/commit", "container.commit"),
    ("POST", "/build", "build"),
    ("POST", "/build/prune", "build.prune"),
    ("POST", "/build/cancel", "build.cancel"),
    ("POST", "/images/create", "image.pull"),
    ("POST", "/images/load", "image.load"),
    ("POST", "/images/prune", "image.prune"),
    ("POST", "/images/{name}/push", "image.push"),
    ("POST", "/images/{name}/tag", "image.tag"),
    ("DELETE", "/images/{name}", "image.delete"),
    ("POST", "/volumes/create", "volume.create"),
    ("POST", "/volumes/prune", "volume.prune"),
    ("DELETE", "/volumes/{name}", "volume.delete"),
    ("PUT", "/volumes/{name}", "volume.update"),
    ("POST", "/networks/create", "network.create"),
    ("POST", "/networks/prune", "network.prune"),
    ("POST", "/networks/{name}/connect", "network.connect"),
    ("POST", "/networks/{name}/disconnect", "network.disconnect"),
    ("DELETE", "/networks/{name}", "network.delete"),
    ("POST", "/services/create", "service.create"),
    ("POST", "/services/{name}/update", "service.update"),
    ("DELETE", "/services/{name}", "service.delete"),
    ("POST", "/plugins/pull", "plugin.pull"),
    ("POST", "/plugins/create", "plugin.create"),
    ("POST", "/plugins/{name}/upgrade", "plugin.upgrade"),
    ("POST", "/plugins/{name}/set", "plugin.set"),
    ("POST", "/plugins/{name}/enable", "plugin.enable"),
    ("POST", "/plugins/{name}/disable", "plugin.disable"),
    ("POST", "/plugins/{name}/push", "plugin.push"),
    ("DELETE", "/plugins/{name}", "plugin.remove"),
    ("POST", "/swarm/init", "swarm.init"),
    ("POST", "/swarm/join", "swarm.join"),
    ("POST", "/swarm/leave", "swarm.leave"),
    ("POST", "/swarm/update", "swarm.update"),
    ("POST", "/swarm/unlock", "swarm.unlock"),
    ("POST", "/nodes/{name}/update", "node.update"),
    ("DELETE", "/nodes/{name}", "node.delete"),
    ("POST", "/secrets/create", "secret.create"),
    ("POST", "/secrets/{name}/update", "secret.update"),
    ("DELETE", "/secrets/{name}", "secret.delete"),
    ("POST", "/configs/create", "config.create"),
    ("POST", "/configs/{name}/update", "config.update"),
    ("DELETE", "/configs/{name}", "config.delete"),
    ("POST", "/auth", "auth"),
    ("POST", "/session", "session"),
    ("POST", "/grpc", "grpc"),
)

# Reads: GET/HEAD under the API's known roots. No rule looks at them.
READ_ROOTS = frozenset({
    "_ping", "containers", "exec", "images", "volumes", "networks", "services", "tasks",
    "nodes", "swarm", "secrets", "configs", "plugins", "info", "version", "events", "system",
    "distribution", "build",
})

# Actions whose body the rules must read: no body means no decision (fail closed).
BODY_ACTIONS = frozenset({
    "container.create", "container.update", "exec.create", "volume.create",
    "service.create", "service.update", "plugin.pull", "plugin.upgrade", "plugin.set",
})

# Lifecycle operations counted against the guide's limit of concurrent commands.
LIFECYCLE_ACTIONS = frozenset({
    "container.create", "container.start", "container.stop", "container.restart",
    "container.kill", "container.pause", "container.unpause", "container.rename",
    "container.update", "container.delete", "exec.create", "exec.start",
})


def _compile() -> dict[str, list[tuple[re.Pattern, str]]]:
    table: dict[str, list[tuple[re.Pattern, str]]] = {}
    for method, pattern, action in TABLE:
        rx = "^" + re.escape(pattern).replace(re.escape("{name}"), "(?P<name>.*)") + "$"
        table.setdefault(method, []).append((re.compile(rx, re.DOTALL), action))
    return table


_COMPILED = _compile()


def route(method: str, path: str) -> tuple[str, str]:
    """-> (action, name); action 'unknown' when nothing matches."""
    for rx, action in _COMPILED.get(method, ()):
        m = rx.match(path)
        if m:
            return action, m.groupdict().get("name") or ""
    if method in ("GET", "HEAD"):
        root = path[1:].split("/", 1)[0]
        if root in READ_ROOTS:
            return "read", ""
    return "unknown", ""
