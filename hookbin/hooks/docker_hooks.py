"""`docker-hooks --state prestart|poststart|poststop [--log FILE]`: a lifecycle recorder.

One JSON line per event (container id, phase, OCI status, pid, bundle, time) appended to a
log, for auditing and debugging. One write(2) per line with O_APPEND, so concurrent hooks
never interleave within a line.

It runs as root with arguments from a hook-spec, so it enforces the policy itself (defence
in depth behind the spec checks): the log is a plain file directly in the policy's log_dir,
opened through a trusted directory fd with O_NOFOLLOW (hookbin.trust.open_append_in).
"""
from __future__ import annotations

import json
import os
import sys
import time

from dockguard import util
from hookbin import oci, trust
from hookbin import policy as hookpolicy

PHASES = ("prestart", "poststart", "poststop")
DEFAULT_LOG_NAME = "docker-hooks.log"  # in the policy's log_dir
USAGE = "usage: docker-hooks --state prestart|poststart|poststop [--log FILE]"


def parse_args(argv: list[str]) -> dict:
    opts = {"state": None, "log": None}
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
    if opts["log"] is not None and not os.path.isabs(opts["log"]):
        raise ValueError(f"--log must be an absolute path (got {opts['log']!r})")
    return opts


def log_path(opts: dict, policy) -> str:
    return opts["log"] or os.path.join(policy.log_dir, DEFAULT_LOG_NAME)


def policy_problems(opts: dict, policy, facts: dict) -> list[str]:
    """What the policy refuses in these arguments (pure)."""
    problem = hookpolicy.log_path_problem(log_path(opts, policy), policy)
    return [problem] if problem else []


def record(state: dict, phase: str, now: float) -> dict:
    """The audit record for one event (pure)."""
    return {
        "time": util.utc_stamp(now, 6, truncate=True),
        "id": state["id"],
        "state": phase,
        "status": state["status"],
        "pid": state.get("pid", 0),
        "bundle": state["bundle"],
    }


def append_line(path: str, line: str) -> None:
    fd = trust.open_append_in(os.path.dirname(path), os.path.basename(path))
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def main(argv: list[str] | None = None, policy_path: str | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_args(argv)
        policy = hookpolicy.load(policy_path)
        problems = policy_problems(opts, policy, {})
        if problems:
            raise ValueError("; ".join(problems))
        state = oci.read_state(sys.stdin)
        line = json.dumps(record(state, opts["state"], time.time()), sort_keys=True) + "\n"
        append_line(log_path(opts, policy), line)
    except ValueError as exc:  # hookpolicy.PolicyError included
        print(f"docker-hooks: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    except (oci.OciError, trust.Untrusted, OSError) as exc:
        print(f"docker-hooks: {exc}", file=sys.stderr)
        return 1
    return 0
