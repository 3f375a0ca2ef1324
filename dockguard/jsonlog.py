"""Log lines as JSON, the way the plugin's audit lines are (authz/audit.py): one object per line
with time, version, component, level and msg, so one log shipper reads every dockguard service."""
from __future__ import annotations

import json
import logging

from dockguard import __version__


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str):
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        from authz.audit import now_rfc3339
        rec = {"time": now_rfc3339(), "version": __version__, "component": self.component,
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            rec["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(rec, ensure_ascii=False)


def setup(component: str, level: str = "INFO", fmt: str = "json", stream=None) -> None:
    """Root logging for a dockguard service: JSON lines (default) or the plain text format."""
    import sys
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(component))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
