"""The CLI conventions every `dockguard` subcommand follows (issue 13).

Exit codes: 0 ok, 1 failure (a refused request, a failed check, a bad or missing file), 2
usage (argparse). Errors on stderr with one prefix, `dockguard: error: `. Every read command
takes `--json`; every option has help (tests/dockguard/test_cli_conventions.py walks them).
"""
from __future__ import annotations

import json
import sys

ERROR = "dockguard: error: "
OK, FAILURE, USAGE = 0, 1, 2


def fail(msg: str, code: int = FAILURE) -> int:
    print(ERROR + msg, file=sys.stderr)
    return code


def add_json(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def print_json(doc) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False))


def read_input(path: str) -> bytes:
    """A file's bytes, or stdin's for '-'; OSError names the file (callers turn it into fail())."""
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()
