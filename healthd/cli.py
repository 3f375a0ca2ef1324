"""`dockguard healthd ...` (filled in by the health sidecar work)."""


def register(sub, name):
    p = sub.add_parser(name, help="the health sidecar")
    p.set_defaults(func=lambda args: p.print_help())
