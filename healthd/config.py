"""Container labels -> a check definition, with the validation authz reuses at create time.

One place knows what `dockguard.health.*` labels mean, so the AuthZ plugin (at `docker
create`) and the sidecar (at run time) refuse exactly the same things.

Labels:
  dockguard.health.cmd=CMD            run `/bin/sh -c CMD` in the container (exec API);
                                      a JSON array (`["/bin/true"]`) is run without a shell
  dockguard.health.tcp=PORT           connect to 127.0.0.1:PORT in the container's netns
  dockguard.health.http=PORT[/path]   GET http://127.0.0.1:PORT/path there, 2xx/3xx = success
  dockguard.health.interval / .timeout / .start-period   Go durations (`1m30s`, `500ms`)
  dockguard.health.retries            integer
  dockguard.health.exit-on-unhealthy  boolean (Go's strconv.ParseBool spellings)
0 or an empty value for an option means its default (the guide's 说明); negative or
malformed values are errors.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

PREFIX = "dockguard.health."
KINDS = ("cmd", "tcp", "http")
OPTIONS = ("interval", "timeout", "start-period", "retries", "exit-on-unhealthy")
KNOWN = {PREFIX + k for k in KINDS + OPTIONS}

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_PERIOD = 0.0
DEFAULT_RETRIES = 3
MAX_DURATION_NS = 2**63 - 1          # the guide: "最大为int64上限（纳秒）"
MAX_RETRIES = 2**31 - 1              # the guide: "最大为int32上限"

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)", re.ASCII)  # Go: ASCII digits only


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds: the syntax `docker run --health-*` accepts."""
    s = text.strip()
    if s != text or not s:
        raise ValueError(f"invalid duration {text!r}")
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:  # a sign alone: Go's "invalid duration"
        raise ValueError(f"invalid duration {text!r}")
    pos, total = 0, 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            raise ValueError(f"invalid duration {text!r} (use Go syntax such as 1m30s or 500ms)")
        num, unit = m.groups()
        whole, _, frac = num.partition(".")
        scale = _UNITS[unit]
        total += int(whole or 0) * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        pos = m.end()
    if total > MAX_DURATION_NS:
        raise ValueError(f"duration {text!r} overflows int64 nanoseconds")
    return sign * total


def parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool, as Docker parses `--health-exit-on-unhealthy=...`."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"invalid boolean {text!r} (use true or false)")


def parse_port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise ValueError(f"invalid port {text!r} (1-65535)")
    return int(text)


@dataclass(frozen=True)
class CheckSpec:
    """What to run and how often. kind: 'cmd', 'tcp', 'http' (the sidecar runs them) or
    'engine' (the engine's own HEALTHCHECK; the sidecar only applies exit-on-unhealthy)."""

    kind: str
    argv: tuple[str, ...] = ()
    port: int = 0
    path: str = "/"
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    start_period: float = DEFAULT_START_PERIOD
    retries: int = DEFAULT_RETRIES
    exit_on_unhealthy: bool = False

    def describe(self) -> str:
        if self.kind == "cmd":
            return "cmd " + json.dumps(list(self.argv))
        if self.kind == "tcp":
            return f"tcp 127.0.0.1:{self.port}"
        if self.kind == "http":
            return f"http 127.0.0.1:{self.port}{self.path}"
        return "engine HEALTHCHECK"

    def to_json(self) -> dict:
        return {"Kind": self.kind, "Describe": self.describe(), "Interval": self.interval,
                "Timeout": self.timeout, "StartPeriod": self.start_period,
                "Retries": self.retries, "ExitOnUnhealthy": self.exit_on_unhealthy}


def health_labels(labels: dict[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (labels or {}).items() if k.startswith(PREFIX)}


def _parse(labels: dict[str, str]) -> tuple[dict, list[str]]:
    """Parse every dockguard.health.* label; collect all problems instead of stopping at one."""
    problems: list[str] = []
    out: dict = {}
    hl = health_labels(labels)
    for key in sorted(hl):
        if key not in KNOWN:
            problems.append(f"{key}: unknown label (known: {', '.join(sorted(KNOWN))})")
    kinds = [k for k in KINDS if PREFIX + k in hl]
    if len(kinds) > 1:
        problems.append("declare only one of " + ", ".join(PREFIX + k for k in kinds))
    for kind in kinds[:1]:
        value = hl[PREFIX + kind]
        label = PREFIX + kind
        try:
            if kind == "cmd":
                out["argv"] = _parse_cmd(value)
            elif kind == "tcp":
                out["port"] = parse_port(value)
            else:
                port, slash, path = value.partition("/")
                out["port"] = parse_port(port)
                path = "/" + path if slash else "/"
                if any(c.isspace() or ord(c) < 32 for c in path):
                    raise ValueError(f"invalid path {path!r} (no spaces or control characters)")
                out["path"] = path
            out["kind"] = kind
        except ValueError as exc:
            problems.append(f"{label}={value!r}: {exc}")
    for opt, default in (("interval", DEFAULT_INTERVAL), ("timeout", DEFAULT_TIMEOUT),
                         ("start-period", DEFAULT_START_PERIOD)):
        label = PREFIX + opt
        if label not in hl or hl[label] == "":
            continue          # the guide: an empty value means the default
        try:
            ns = parse_duration(hl[label])
            if ns < 0:
                raise ValueError("must not be negative (0 means the default)")
            if opt != "start-period" and 0 < ns < 1_000_000:
                raise ValueError("must be at least 1ms (0 means the default)")
            out[opt.replace("-", "_")] = ns / 1e9 if ns else default
        except ValueError as exc:
            problems.append(f"{label}={hl[label]!r}: {exc}")
    label = PREFIX + "retries"
    if hl.get(label, "") != "":
        v = hl[label]
        if not re.fullmatch(r"[+-]?[0-9]+", v.strip() or "x") or v.strip() != v:
            problems.append(f"{label}={v!r}: not an integer")
        elif int(v) < 0:
            problems.append(f"{label}={v!r}: must not be negative (0 means the default, 3)")
        elif int(v) > MAX_RETRIES:
            problems.append(f"{label}={v!r}: larger than int32")
        else:
            out["retries"] = int(v) or DEFAULT_RETRIES
    label = PREFIX + "exit-on-unhealthy"
    if hl.get(label, "") != "":
        try:
            out["exit_on_unhealthy"] = parse_bool(hl[label])
        except ValueError as exc:
            problems.append(f"{label}={hl[label]!r}: {exc}")
    return out, problems


def _parse_cmd(value: str) -> tuple[str, ...]:
    if value.lstrip().startswith("["):
        try:
            argv = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"looks like a JSON array but is not one ({exc.msg})") from None
        if not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("a JSON array command must be a non-empty list of strings")
        return tuple(argv)
    if not value.strip():
        raise ValueError("empty command")
    return ("/bin/sh", "-c", value)


def container_over_image(labels: dict[str, str], image_labels: dict[str, str] | None
                         ) -> dict[str, str]:
    """The guide: only one health configuration is in effect, and the one given at create
    time overrides the image's. Docker merges image and container labels, so an image's
    `dockguard.health.cmd` plus a container's `.tcp` would read as two checks: keep the
    container's own kind and drop the kinds that came from the image."""
    kinds = [k for k in KINDS if PREFIX + k in labels]
    if len(kinds) < 2:
        return labels
    image_labels = image_labels or {}
    from_image = {PREFIX + k for k in kinds if image_labels.get(PREFIX + k) == labels[PREFIX + k]}
    if len(kinds) - len(from_image) != 1:
        return labels
    return {k: v for k, v in labels.items() if k not in from_image}


def check_labels(labels: dict[str, str]) -> list[str]:
    """Human-readable problems with the dockguard.health.* labels; empty when OK or absent.

    This is what the AuthZ plugin calls at `docker create`. Options without a check are
    accepted here: they may apply to an image's engine HEALTHCHECK, which authz cannot see.
    """
    return _parse(labels)[1]


def spec_from_labels(labels: dict[str, str] | None, engine_healthcheck: bool = False
                     ) -> tuple[CheckSpec | None, list[str]]:
    """The check the sidecar should run (or None) and the problems that prevent it.

    `engine_healthcheck`: the container has an engine HEALTHCHECK (image or --health-cmd).
    A sidecar check (cmd/tcp/http) takes precedence over it for exit-on-unhealthy.
    """
    hl = health_labels(labels)
    if not hl:
        return None, []
    out, problems = _parse(hl)
    if problems:
        return None, problems
    kind = out.pop("kind", None)
    if kind is None:
        if not engine_healthcheck:
            return None, ["dockguard.health.* options without a check: set "
                          "dockguard.health.cmd, .tcp or .http, or give the container an "
                          "engine HEALTHCHECK"]
        kind = "engine"
    return CheckSpec(kind=kind, **out), []
