"""The AuthZ request envelope, and its URI read the way dockerd's Go router reads it.

dockerd hands the plugin `RequestURI` raw, as the client sent it. Go's server parses it
with `url.ParseRequestURI` (absolute-form `http://host/path` allowed, percent-escapes
decoded into `URL.Path`), gorilla/mux matches the *decoded, cleaned* path, and handlers
read the query with `url.ParseQuery` (first value wins, `+` is a space, pairs holding a
`;` are dropped). We do the same, and refuse what Go would refuse.
"""
from __future__ import annotations

import base64
import binascii
import json
import posixpath
import re
from dataclasses import dataclass, field

from . import gojson
from dockguard.util import DockguardError

_VERSION = re.compile(r"^/v([0-9.]+)(/.*)?$")
_HEX = "0123456789abcdefABCDEF"
# unicode.IsSpace / strings.TrimSpace: the Unicode White_Space property
_GO_SPACE = ("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
             "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def version_less(version: str, than: tuple[int, ...]) -> bool:
    """dockerd's versions.LessThan: dotted numbers, a part that is not one counts as 0
    (so `01.23` and `1.23.0` are 1.23)."""
    parts = [int(x) if x.isdigit() else 0 for x in version.split(".")]
    n = max(len(parts), len(than))
    return tuple(parts + [0] * (n - len(parts))) < tuple(list(than) + [0] * (n - len(than)))


class EnvelopeError(DockguardError, ValueError):
    """dockerd's envelope itself is unusable: the request is denied."""


def unescape(s: str, *, query: bool) -> str:
    """Go's url.unescape: %XX decoded as bytes then UTF-8; a bad escape is an error."""
    if "%" not in s and not (query and "+" in s):
        return s
    out = bytearray()
    raw = s.encode("utf-8", "surrogatepass")
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == 0x25:  # %
            hexpair = raw[i + 1:i + 3].decode("latin-1")
            if len(hexpair) != 2 or hexpair[0] not in _HEX or hexpair[1] not in _HEX:
                raise EnvelopeError(f"invalid URL escape {raw[i:i + 3].decode('latin-1')!r}")
            out.append(int(hexpair, 16))
            i += 3
        elif c == 0x2B and query:  # +
            out.append(0x20)
            i += 1
        else:
            out.append(c)
            i += 1
    return out.decode("utf-8", "replace")


def clean_path(p: str) -> str:
    """gorilla/mux's cleanPath: Go's path.Clean, keeping a trailing slash."""
    if p == "":
        return "/"
    if p[0] != "/":
        p = "/" + p
    np = posixpath.normpath(p)
    if np.startswith("//"):
        np = "/" + np.lstrip("/")
    if p[-1] == "/" and np != "/":
        np += "/"
    return np


def parse_query(q: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if not q:
        return out
    for part in q.split("&"):
        if not part or ";" in part:
            continue
        k, _, v = part.partition("=")
        try:
            k, v = unescape(k, query=True), unescape(v, query=True)
        except EnvelopeError:
            continue  # Go drops the pair
        out.setdefault(k, []).append(v)
    return out


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def split_uri(uri: str) -> tuple[str, str | None, dict[str, list[str]]]:
    """RequestURI -> (path without /vX.Y, version or None, query), as url.ParseRequestURI
    splits it: the query cut at the first '?' first, then `scheme:` with an optional
    `//authority` (`http:/v1.41/x` is a path too), and no fragment ('#' stays in the path)."""
    if not uri:
        raise EnvelopeError("empty RequestURI")
    if uri == "*":
        return "*", None, {}
    rest, _, raw_query = uri.partition("?")
    if rest[:1] != "/":
        m = _SCHEME.match(rest)
        if not m:
            raise EnvelopeError(f"RequestURI is neither a path nor an absolute URL: {uri[:80]!r}")
        rest = rest[m.end():]
        if rest.startswith("//"):
            slash = rest.find("/", 2)
            rest = rest[slash:] if slash >= 0 else ""
        elif rest[:1] != "/":
            # opaque (`http:x`): Go's path is empty and the router only redirects it
            raise EnvelopeError(f"RequestURI has no path: {uri[:80]!r}")
    path = clean_path(unescape(rest, query=False))
    version = None
    m = _VERSION.match(path)
    if m:
        version = m.group(1)
        path = m.group(2) or "/"
    return path, version, parse_query(raw_query)


@dataclass(slots=True)
class AuthzRequest:
    """What dockerd asks about, decoded once."""

    method: str
    uri: str
    path: str
    version: str | None
    query: dict[str, list[str]]
    body_raw: bytes
    user: str = ""
    headers: dict = field(default_factory=dict)
    status: int = 0  # AuthZRes only
    action: str = ""  # set by routing
    name: str = ""    # the {name} of the route, if any
    _body: object = None
    _body_error: str | None = None
    _decoded: bool = False

    def q(self, name: str) -> str:
        """r.FormValue: the first value, or ''."""
        v = self.query.get(name)
        return v[0] if v else ""

    def api_below(self, than: tuple[int, ...]) -> bool:
        """The request's /vX.Y is below `than` (no version: the daemon's own, so no)."""
        return self.version is not None and version_less(self.version, than)

    def header(self, name: str):
        """A request header as dockerd passed it (any case of the name), or None."""
        low = name.lower()
        return next((v for k, v in self.headers.items() if str(k).lower() == low), None)

    def q_bool(self, name: str) -> bool:
        """httputils.BoolValue: anything but '', 0, no, false, none (trimmed, any case).

        Trimmed as Go's strings.TrimSpace trims (Unicode White_Space), not as str.strip():
        Python also strips \x1c-\x1f, so `force=0%1C` would read as false here and true in Go.
        """
        s = self.q(name).strip(_GO_SPACE).lower()
        return s not in ("", "0", "no", "false", "none")

    def body(self):
        """The body decoded as Go would decode it; raises gojson.BodyError."""
        if not self._decoded:
            self._decoded = True
            try:
                self._body = gojson.decode(self.body_raw)
            except gojson.BodyError as exc:
                self._body_error = str(exc)
        if self._body_error is not None:
            raise gojson.BodyError(self._body_error)
        return self._body


def parse_envelope(data: bytes, *, max_body: int) -> AuthzRequest:
    """dockerd's AuthZ JSON -> AuthzRequest; raise EnvelopeError on anything unusable."""
    if not data.strip():
        # seen when the plugin died mid-request: dockerd's retry carries no body
        raise EnvelopeError("dockerd sent an empty plugin request (its retry after the plugin went "
                            "away mid-request carries no body); run the command again")
    try:
        env = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"plugin request is not JSON: {exc}") from None
    if not isinstance(env, dict):
        raise EnvelopeError("plugin request is not a JSON object")
    method = env.get("RequestMethod")
    uri = env.get("RequestUri", env.get("RequestURI"))  # Go's tag is RequestUri
    if not isinstance(method, str) or not method or not isinstance(uri, str):
        raise EnvelopeError("plugin request lacks RequestMethod or RequestUri")
    body_b64 = env.get("RequestBody") or ""
    if not isinstance(body_b64, str):
        raise EnvelopeError("RequestBody must be base64 text")
    if len(body_b64) > (max_body * 4) // 3 + 4:
        raise EnvelopeError(f"request body is larger than {max_body} bytes")
    try:
        body = base64.b64decode(body_b64, validate=True) if body_b64 else b""
    except (binascii.Error, ValueError):
        raise EnvelopeError("RequestBody is not valid base64") from None
    user = env.get("User") or ""
    headers = env.get("RequestHeaders") or {}
    status = env.get("ResponseStatusCode") or 0
    if not isinstance(user, str) or not isinstance(headers, dict) or not isinstance(status, int):
        raise EnvelopeError("plugin request has wrongly typed User, RequestHeaders or ResponseStatusCode")
    path, version, query = split_uri(uri)
    return AuthzRequest(method=method.upper(), uri=uri, path=path, version=version, query=query,
                        body_raw=body, user=user, headers=headers, status=status)
