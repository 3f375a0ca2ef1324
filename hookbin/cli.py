"""`dockguard hookspec ...` (filled in by the hook-spec work)."""


def register(sub, name):
    p = sub.add_parser(name, help="validate and merge hook-spec files")
    p.set_defaults(func=lambda args: p.print_help())
