"""Audit: one JSON line per decision on stdout, so journald (or any log shipper) keeps it.

One schema (SCHEMA below, documented in the README's Operations section): every field is
always present, with the same JSON type, whatever the decision; `rule` and `exceptions` are
always lists. Which allowed requests are written is the policy's `[audit] allowed`.
"""
from __future__ import annotations

import json
import os
import sys
import time

from dockguard import __version__
from dockguard.util import utc_stamp

# field -> what it holds (the README's table is this one)
SCHEMA = {
    "time": "UTC time of the decision, RFC 3339 with milliseconds",
    "version": "dockguard version that decided",
    "policy_hash": "first 16 hex digits of the SHA-256 of the built-in and the policy file",
    "decision_id": "random id of this decision (16 hex digits)",
    "decision": "allow | audit | deny",
    "rule": "list of rule ids that found something (empty when allowed)",
    "exceptions": "list of the policy's exceptions that applied",
    "action": "the API action (container.create, read, ...)",
    "method": "HTTP method",
    "uri": "request URI (first 512 characters)",
    "container": "container named by the request (or the create's name)",
    "image": "image of a container.create, as asked",
    "user": "authenticated user dockerd passes (TLS client), or null",
    "client": "the client's User-Agent (docker CLI, SDK, dockguard-healthd/VERSION)",
    "msg": "what the client was told (deny) or what was seen (audit); empty when allowed",
}


def now_rfc3339() -> str:
    return utc_stamp(time.time(), 3, truncate=True)  # one reading: seconds and ms alike


def emit(stream, rec: dict) -> None:
    """One JSON line; a closed or broken log never turns a decision into an error."""
    try:
        try:
            stream.write(json.dumps(rec, ensure_ascii=False) + "\n")
        except UnicodeEncodeError:  # a lone surrogate from a body: escape it, keep the record
            stream.write(json.dumps(rec) + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass


class AuditLog:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def write(self, *, action: str, method: str, uri: str, container: str, decision: str,
              rules: list[str], user: str, msg: str = "", image: str = "", client: str = "",
              exceptions: list[str] | None = None, policy_hash: str = "") -> None:
        rec = {
            "time": now_rfc3339(),
            "version": __version__,  # which dockguard decided: records outlive upgrades
            "policy_hash": policy_hash,
            "decision_id": os.urandom(8).hex(),
            "decision": decision,
            "rule": list(rules or ()),
            "exceptions": list(exceptions or ()),
            "action": action,
            "method": method,
            "uri": uri[:512],
            "container": container or "",
            "image": image or "",
            "user": user or None,
            "client": (client or "")[:256],
            "msg": msg or "",
        }
        emit(self.stream, rec)
