"""`dockguard`: one umbrella command, a subcommand per component.

Each component module exposes `register(subparsers)`; the umbrella only wires them, so a
component's CLI lives next to the code it drives.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMPONENTS = (
    ("authz", "authz.cli"),
    ("hookspec", "hookbin.cli"),
    ("healthd", "healthd.cli"),
    ("sandbox", "dockguard.sandbox"),
    ("install", "dockguard.install"),
    ("uninstall", "dockguard.install"),
    ("preflight", "dockguard.preflight"),
    ("creds", "dockguard.creds.cli"),
    ("doctor", "dockguard.doctor"),
    ("diag", "dockguard.diag"),
)


def build_parser() -> argparse.ArgumentParser:
    from dockguard import __version__
    parser = argparse.ArgumentParser(prog="dockguard", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"dockguard {__version__}")
    sub = parser.add_subparsers(dest="component", required=True, metavar="COMPONENT")
    for name, module in COMPONENTS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.register(sub, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit 0 ok, 1 failure, 2 usage (dockguard/clitools.py); a file that cannot be read is a
    message, never a traceback."""
    from dockguard.clitools import fail
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        return fail(f"{args.component}:{where} {exc.strerror or exc}")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
