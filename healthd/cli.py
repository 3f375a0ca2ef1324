"""`dockguard healthd run|status`: the sidecar and a reader of its state files."""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from .store import read_all
from .service import DEFAULT_STATE_DIR, LOG_FLUSH, default_docker_host


def register(sub, name):
    p = sub.add_parser(name, help="the health sidecar (checks with the guide's semantics, "
                                  "exit-on-unhealthy)")
    hs = p.add_subparsers(dest="healthd_cmd", required=True, metavar="COMMAND")

    r = hs.add_parser("run", help="run the sidecar (follows dockerd's events)")
    r.add_argument("--docker-host", default=None,
                   help="dockerd URL (default: $DOCKER_HOST or unix:///var/run/docker.sock)")
    r.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                   help=f"per-container state files (default {DEFAULT_STATE_DIR})")
    r.add_argument("--log-flush", type=float, default=LOG_FLUSH, metavar="SECONDS",
                   help="status changes are written at once; a new log entry alone at most "
                        f"once per SECONDS per container (default {LOG_FLUSH:g})")
    r.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="least severe messages logged (default %(default)s)")
    r.add_argument("--log-format", default="json", choices=("json", "text"),
                   help="json: one JSON object per line, as the plugin's audit lines (default); "
                        "text: plain lines")
    r.set_defaults(func=cmd_run)

    s = hs.add_parser("status", help="health of watched containers, like docker inspect's State.Health")
    s.add_argument("container", nargs="?", help="name or id (prefix); default: all")
    s.add_argument("--json", action="store_true", help="JSON output")
    s.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                   help=f"where the sidecar keeps its state files (default {DEFAULT_STATE_DIR})")
    s.set_defaults(func=cmd_status)


def cmd_run(args) -> int:
    from .service import run
    from .store import StoreError
    from dockguard import jsonlog
    jsonlog.setup("healthd", args.log_level, args.log_format)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    if args.log_flush < 0:
        print("dockguard: error: --log-flush must not be negative", file=sys.stderr)
        return 2
    host = args.docker_host or default_docker_host()
    prof = os.environ.get("DOCKGUARD_HEALTHD_PROFILE")   # a cProfile dump, for the benchmark
    try:
        if prof:
            import cProfile
            return cProfile.runctx("run(host, sd, lf)", globals(), {
                "run": run, "host": host, "sd": args.state_dir, "lf": args.log_flush}, prof)
        return run(host, args.state_dir, args.log_flush)
    except StoreError as exc:
        print(f"dockguard: error: {exc}", file=sys.stderr)
        return 1


def find(records: list[dict], ref: str) -> list[dict]:
    """docker's lookup order: exact id, exact name, then unique id prefix."""
    ref = ref.lstrip("/")
    for pred in (lambda r: r["Id"] == ref, lambda r: r.get("Name") == ref,
                 lambda r: r["Id"].startswith(ref)):
        hits = [r for r in records if pred(r)]
        if hits:
            return hits
    return []


def cmd_status(args) -> int:
    if not args.state_dir.is_dir():
        print(f"dockguard: error: no state dir {args.state_dir} (is the sidecar running "
              "with this --state-dir?)", file=sys.stderr)
        return 1
    records = read_all(args.state_dir)
    if args.container:
        hits = find(records, args.container)
        if not hits:
            print(f"dockguard: error: no health state for {args.container!r}", file=sys.stderr)
            return 1
        if len(hits) > 1:
            print(f"dockguard: error: {args.container!r} is ambiguous "
                  f"({', '.join(h['Id'][:12] for h in hits)})", file=sys.stderr)
            return 1
        rec = hits[0]
        if args.json:
            print(json.dumps(rec["Health"], indent=2))
            return 0
        print(f"{rec.get('Name')} ({rec['Id'][:12]}): {rec['Health']['Status']}, "
              f"FailingStreak {rec['Health']['FailingStreak']}")
        if rec.get("Check"):
            print(f"  check: {rec['Check']['Describe']}, interval {rec['Check']['Interval']:g}s, "
                  f"retries {rec['Check']['Retries']}, exit-on-unhealthy "
                  f"{str(rec['Check']['ExitOnUnhealthy']).lower()}")
        for p in rec.get("Problems") or []:
            print(f"  problem: {p}")
        for e in rec["Health"]["Log"]:
            out = e["Output"].strip().replace("\n", " ")[:80]
            print(f"  {e['Start']}  exit {e['ExitCode']:>3}  {out}")
        return 0
    if args.json:
        print(json.dumps([{"Id": r["Id"], "Name": r.get("Name"), "Watched": r.get("Watched"),
                           "Check": r.get("Check"), "Health": r["Health"]} for r in records],
                         indent=2))
        return 0
    print(f"{'CONTAINER':<14}{'NAME':<24}{'STATUS':<11}{'STREAK':>6}  CHECK")
    for r in records:
        check = (r.get("Check") or {}).get("Describe") or "; ".join(r.get("Problems") or [])
        print(f"{r['Id'][:12]:<14}{(r.get('Name') or '')[:23]:<24}{r['Health']['Status']:<11}"
              f"{r['Health']['FailingStreak']:>6}  {check}")
    return 0
