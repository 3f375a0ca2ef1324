"""`docker-credential-dockguard`: the docker CLI's credential-helper protocol over our store.

The CLI runs `docker-credential-<credsStore> ACTION` and speaks as docker-credential-helpers'
`credentials.Serve` does:

- `store`: stdin holds `{"ServerURL": ..., "Username": ..., "Secret": ...}` (keys matched
  case-insensitively, as Go decodes them); prints nothing.
- `get`: stdin holds the server URL; prints `{"ServerURL","Username","Secret"}`.
- `erase`: stdin holds the server URL.
- `list`: prints `{"<server URL>": "<username>", ...}`.
- `version`: prints `docker-credential-dockguard (dockguard) VERSION`.

Errors go to stdout with exit status 1, which is where the CLI reads them: a missing login
prints exactly "credentials not found in native keychain" (the CLI then proceeds without
credentials), a missing server URL or username the library's own messages. Anything else
is one line naming the problem and never the secret; no traceback ever reaches the user.
`docker push` and `pull` ignore a failed `get` (they go on without credentials), so a
refused `get` or `list` also says why on stderr, which the CLI passes through to the user.
"""
from __future__ import annotations

import os
import sys

NAME = "docker-credential-dockguard"
PACKAGE = "dockguard"
ACTIONS = ("store", "get", "erase", "list", "version")
USAGE = f"Usage: {NAME} <store|get|erase|list|version>"
MAX_INPUT = 1 << 20


def _version() -> str:
    from dockguard import __version__
    return f"{NAME} ({PACKAGE}) {__version__}"


def _read_stdin(stdin) -> str:
    data = stdin.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise ValueError("input too large")
    return data.decode("utf-8")


def _scanned(text: str) -> str:
    """What Go's bufio.Scanner loop yields: the lines joined without their line endings."""
    return "".join(line[:-1] if line.endswith("\r") else line for line in text.split("\n"))


def parse_store_request(text: str) -> tuple[str, str, str]:
    """(server URL, username, secret) from the `store` input, read as Go's json.Decoder does."""
    import json
    from dockguard.creds.store import CredsError
    body = _scanned(text).lstrip(" \t\r\n")
    try:
        doc, _ = json.JSONDecoder().raw_decode(body)
    except ValueError:
        raise CredsError("invalid credentials: not a JSON object") from None
    if not isinstance(doc, dict):
        raise CredsError("invalid credentials: not a JSON object")
    fields = {"serverurl": "", "username": "", "secret": ""}
    for k, v in doc.items():
        lk = k.lower()
        if lk in fields and v is not None:
            if not isinstance(v, str):
                raise CredsError(f"invalid credentials: {k} is not a string")
            fields[lk] = v
    if not fields["serverurl"]:
        raise CredsError("no credentials server URL")
    if not fields["username"]:
        raise CredsError("no credentials username")
    return fields["serverurl"], fields["username"], fields["secret"]


def _server_url(text: str) -> str:
    from dockguard.creds.store import CredsError
    url = _scanned(text).strip()
    if not url:
        raise CredsError("no credentials server URL")
    return url


def _no_core_dumps() -> None:
    """A core dump would write decrypted secrets to disk."""
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass


def run(action: str, stdin, stdout, environ=None, stderr=None) -> int:
    """One protocol action; returns the exit status. `stdin` is binary, `stdout` text."""
    try:
        _no_core_dumps()
        import json
        from dockguard.creds import store as S
        vault = S.Vault(S.config_dir(environ))
        if action == "store":
            url, username, secret = parse_store_request(_read_stdin(stdin))
            vault.store(url, username, secret)
        elif action == "get":
            url = _server_url(_read_stdin(stdin))
            username, secret = vault.get(url)
            stdout.write(json.dumps({"ServerURL": url, "Username": username, "Secret": secret},
                                    separators=(",", ":")) + "\n")
        elif action == "erase":
            vault.erase(_server_url(_read_stdin(stdin)))
        elif action == "list":
            stdout.write(json.dumps(vault.list(), separators=(",", ":")) + "\n")
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line, no traceback
        from dockguard.creds.store import CredsError, NotFound
        if isinstance(exc, CredsError):
            msg = str(exc)
        elif isinstance(exc, (ValueError, UnicodeDecodeError)):
            msg = f"{NAME}: invalid input on stdin"
        elif isinstance(exc, OSError):
            msg = f"{NAME}: {exc.strerror or 'I/O error'}"
        else:
            msg = f"{NAME}: internal error ({type(exc).__name__})"
        stdout.write(msg + "\n")
        if action in ("get", "list") and stderr is not None and not isinstance(exc, NotFound):
            # push and pull drop a helper's error and carry on anonymously ("no basic auth
            # credentials"); the helper's stderr is the CLI's, so the reason is said there.
            stderr.write(f"{NAME}: {msg}\n")
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = sys.stdout
    if len(argv) != 1:
        out.write(USAGE + "\n")
        return 2
    action = argv[0]
    if action in ("--help", "-h"):
        out.write(USAGE + "\n")
        return 0
    if action in ("version", "--version", "-v"):
        out.write(_version() + "\n")
        return 0
    if action not in ACTIONS:
        out.write(f"{NAME}: unknown action: {action}\n")
        return 2
    code = run(action, sys.stdin.buffer, out, os.environ, sys.stderr)
    out.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
