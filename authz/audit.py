"""Audit: one JSON line per decision on stdout, so journald (or any log shipper) keeps it."""
from __future__ import annotations

import json
import sys
import time

from dockguard import __version__


class AuditLog:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def write(self, *, action: str, method: str, uri: str, container: str, decision: str,
              rules: list[str], user: str, msg: str = "") -> None:
        now = time.time()  # one instant: seconds and milliseconds from the same reading
        rec = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
            "action": action,
            "method": method,
            "uri": uri[:512],
            "container": container,
            "rule": rules[0] if len(rules) == 1 else (rules or None),
            "decision": decision,
            "user": user or None,
            "version": __version__,  # which dockguard decided: records outlive upgrades
        }
        if msg:
            rec["msg"] = msg
        try:
            try:
                line = json.dumps(rec, ensure_ascii=False) + "\n"
                self.stream.write(line)
            except UnicodeEncodeError:  # a lone surrogate from a body: escape it, keep the record
                self.stream.write(json.dumps(rec) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed log must not turn decisions into errors
