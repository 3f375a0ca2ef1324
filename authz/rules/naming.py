"""Names that shadow container IDs (guide: 避免使用已有容器的长id、短id作为新容器的name).

dockerd resolves a reference by full ID, then by exact name, then by ID prefix. A name that
equals an existing ID is never reachable by name; a hex name that prefixes an existing ID
hijacks that ID's short form.
"""
from __future__ import annotations

import re

from . import rule

_HEX = re.compile(r"[0-9a-f]+")


def shadowed_ids(name: str, ids) -> list[str]:
    n = name.lstrip("/")
    if not n or not _HEX.fullmatch(n):
        return []
    return [i for i in ids if i.startswith(n)]


@rule("name-shadows-id", actions=("container.create", "container.rename"),
      reason="a name equal to (a prefix of) another container's ID makes docker pick the wrong "
             "container when either is used",
      hint="choose a name that is not a hexadecimal string (add a letter outside a-f)")
def name_shadows_id(spec, facts):
    name = facts.request.q("name")
    if not name or not _HEX.fullmatch(name.lstrip("/")):
        return None  # cheap check first: only hex names can shadow
    hits = shadowed_ids(name, facts.container_ids())
    if hits:
        what = "equals" if any(h == name.lstrip("/") for h in hits) else "is a prefix of"
        return [f"name {name!r} {what} the ID of container {hits[0][:12]}"]
