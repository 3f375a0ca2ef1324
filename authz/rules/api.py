"""Routes dockguard does not know: allowed and audited by default, so a new API surface is
seen in the log before it is trusted; a policy can make them deny."""
from __future__ import annotations

from . import rule


@rule("unknown-route", actions=("unknown",),
      reason="dockguard has no rules for this API route",
      hint="if the route is legitimate, nothing to do; set unknown-route = \"deny\" to refuse "
           "everything dockguard cannot read")
def unknown_route(spec, facts):
    return [f"{facts.request.method} {facts.request.path}"]
