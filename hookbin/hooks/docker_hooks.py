"""`docker-hooks --state prestart|poststart|poststop [--log FILE]`: a lifecycle recorder.

One JSON line per event (container id, phase, OCI status, pid, bundle, time) appended to a
log, for auditing and debugging. One write(2) per line with O_APPEND, so concurrent hooks
never interleave within a line.
"""
from __future__ import annotations

import json
import os
import sys
import time

from hookbin import oci

PHASES = ("prestart", "poststart", "poststop")
DEFAULT_LOG = "/var/log/docker-hooks.log"
USAGE = "usage: docker-hooks --state prestart|poststart|poststop [--log FILE]"


def parse_args(argv: list[str]) -> dict:
    opts = {"state": None, "log": DEFAULT_LOG}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in ("--state", "--log"):
            if not eq:
                if i + 1 >= len(argv):
                    raise ValueError(f"{name} needs a value")
                i += 1
                value = argv[i]
            opts[name[2:]] = value
        else:
            raise ValueError(f"unexpected argument {arg!r}")
        i += 1
    if opts["state"] not in PHASES:
        raise ValueError(f"--state must be one of {', '.join(PHASES)} (got {opts['state']!r})")
    if not os.path.isabs(opts["log"]):
        raise ValueError(f"--log must be an absolute path (got {opts['log']!r})")
    return opts


def record(state: dict, phase: str, now: float) -> dict:
    """The audit record for one event (pure)."""
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z",
        "id": state["id"],
        "state": phase,
        "status": state["status"],
        "pid": state.get("pid", 0),
        "bundle": state["bundle"],
    }


def append_line(path: str, line: str) -> None:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, mode=0o755, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_args(argv)
        state = oci.read_state(sys.stdin)
        line = json.dumps(record(state, opts["state"], time.time()), sort_keys=True) + "\n"
        append_line(opts["log"], line)
    except ValueError as exc:
        print(f"docker-hooks: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    except (oci.OciError, OSError) as exc:
        print(f"docker-hooks: {exc}", file=sys.stderr)
        return 1
    return 0
