"""`dockguard authz serve|check|rules|policy`."""
from __future__ import annotations

import json
import os
import sys


def register(sub, name):
    p = sub.add_parser(name, help="the Docker authorization plugin")
    s = p.add_subparsers(dest="authz_cmd", required=True, metavar="COMMAND")

    serve = s.add_parser("serve", help="serve the plugin on a unix socket")
    serve.add_argument("--socket",
                       help="unix socket path; under /run/docker/plugins/NAME.sock dockerd finds it "
                            "as --authorization-plugin=NAME (not needed when systemd passes the "
                            "socket: dockguard-authz.socket)")
    serve.add_argument("--policy", help="TOML policy file (default: the built-in policy)")
    serve.add_argument("--docker-host", help="daemon URL for lookups (default: DOCKER_HOST, "
                                             "else the standard socket)")
    serve.add_argument("--plugin-name", action="append", default=[],
                       help="names this plugin is known by (protected from disable/remove)")
    serve.add_argument("--worker-class", default="gevent", choices=("gevent", "gthread", "sync"))
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--threads", type=int, default=8)
    serve.add_argument("--worker-tmp-dir", default=os.environ.get("RUNTIME_DIRECTORY"),
                       help="gunicorn's worker heartbeat dir (default: $RUNTIME_DIRECTORY under "
                            "systemd, else the system temp dir)")
    serve.set_defaults(func=cmd_serve)

    check = s.add_parser("check", help="dry-run the policy against a request (the JSON dockerd sends)")
    check.add_argument("request", nargs="?", default="-", help="file with the AuthZReq JSON, or - for stdin")
    check.add_argument("--policy")
    check.add_argument("--docker-host", help="daemon for lookups (rules that need one fail closed without)")
    check.set_defaults(func=cmd_check)

    rules = s.add_parser("rules", help="list the rules with their level under a policy")
    rules.add_argument("--policy")
    rules.set_defaults(func=cmd_rules)

    pol = s.add_parser("default-policy", help="print the built-in policy (a starting point)")
    pol.add_argument("--profile", default="guide", choices=("guide", "cis"),
                     help="cis: the CIS Docker Benchmark profile (docs/cis.md)")
    pol.set_defaults(func=lambda args: print(
        __import__("authz.policy", fromlist=["x"]).profile_text(args.profile), end=""))


def _policy(path):
    from .policy import PolicyError, load
    try:
        return load(path)
    except PolicyError as exc:
        print(f"dockguard authz: {exc}", file=sys.stderr)
        raise SystemExit(2)


def cmd_serve(args) -> int:
    from .policy import PolicyError, load
    from .serve import serve, systemd_socket
    if not args.socket and not systemd_socket():
        print("dockguard authz serve: --socket is required (unless systemd passes the socket)",
              file=sys.stderr)
        return 2
    state = {"policy": _policy(args.policy)}  # fail before binding the socket
    names = set(args.plugin_name)
    base = os.path.basename(args.socket or "")
    if base.endswith(".sock"):
        names.add(base[:-5])
    docker_host = args.docker_host

    def build(policy, inflight=None):
        from .context import DaemonClient
        from .engine import Engine
        engine = Engine(policy, DaemonClient(docker_host, timeout=policy.lookup_timeout),
                        self_names=frozenset(names))
        if inflight is not None:  # requests admitted under the old policy still finish
            engine.inflight = inflight
        return engine

    def rebuild(old):  # in the worker, on SIGHUP
        return build(load(args.policy), old.inflight)

    def factory():  # in each (re)spawned worker: the master's last good policy
        from .app import create_app
        return create_app(build(state["policy"]), rebuild if args.policy else None)

    def on_hup():  # in the master: a worker respawned later starts with the new policy
        if not args.policy:
            return
        try:
            state["policy"] = load(args.policy)
        except PolicyError as exc:
            print(f"dockguard authz: reload failed, keeping the last good policy: {exc}",
                  file=sys.stderr, flush=True)

    from dockguard import __version__
    print(json.dumps({"dockguard": "authz", "version": __version__,
                      "socket": args.socket or "(from systemd)", "policy": state["policy"].source,
                      "worker_class": args.worker_class}), flush=True)
    serve(args.socket, factory, worker_class=args.worker_class, workers=args.workers,
          threads=args.threads, on_hup=on_hup, worker_tmp_dir=args.worker_tmp_dir)
    return 0


def cmd_check(args) -> int:
    from .context import DaemonClient
    from .engine import Engine
    policy = _policy(args.policy)
    data = sys.stdin.buffer.read() if args.request == "-" else open(args.request, "rb").read()
    import io
    log = io.StringIO()
    from .audit import AuditLog
    engine = Engine(policy, DaemonClient(args.docker_host, timeout=policy.lookup_timeout),
                    audit=AuditLog(log))
    decision = engine.request(data)
    audit = log.getvalue().strip().splitlines()
    out = {"Allow": decision.allow, "Msg": decision.msg, "Rules": list(decision.rules)}
    if audit:
        out["Audit"] = json.loads(audit[-1])
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0 if decision.allow else 1


def cmd_rules(args) -> int:
    from .rules import all_rules
    policy = _policy(args.policy)
    for rid, r in sorted(all_rules().items()):
        print(f"{rid:28} {policy.level(rid):6} {', '.join(sorted(r.actions)) or '(engine)'}")
    return 0
