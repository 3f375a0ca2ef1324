"""BuildKit's own API (/grpc): the build options travel inside a hijacked HTTP/2 stream the
plugin never sees, so `docker buildx build --network host` or `--allow security.insecure`
would pass a rule that only reads /build (guide: 不要使用--net=host; CIS 5.9).

dockerd can refuse those entitlements itself: daemon.json
`"builder": {"entitlements": {"network-host": false, "security-insecure": false}}`
(read by every dockerd since 19.03, both BuildKit paths). Where the daemon enforces them
(`dockguard install` sets them and then turns this rule off in /etc/dockguard/policy.toml)
/grpc is safe; elsewhere it is refused. /session only carries the client's files and
credentials for a build whose options /build shows, so it stays allowed.
"""
from __future__ import annotations

from . import rule


@rule("buildkit-session", actions=("grpc",),
      reason="BuildKit's gRPC API carries build options (--network host, security.insecure) "
             "that the plugin cannot read; only dockerd's builder entitlements can refuse them",
      hint="set daemon.json \"builder\": {\"entitlements\": {\"network-host\": false, "
           "\"security-insecure\": false}} (dockguard install does), then buildkit-session = "
           "\"off\" in the policy; or build with the classic API (DOCKER_BUILDKIT=0 docker build)")
def buildkit_session(spec, facts):
    return [f"{facts.request.method} {facts.request.path} (BuildKit's API, e.g. docker buildx build)"]
