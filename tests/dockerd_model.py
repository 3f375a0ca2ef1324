"""An executable model of how dockerd reads a request, for the fuzz and differential tests.

Written from Go's and moby's documented behaviour, independently of authz/ (it imports
nothing from it), so that the reader can be checked against it rather than against itself:

- JSON text: Go's `encoding/json` grammar (RFC 8259; only the first value of a body is
  read by `json.Decoder.Decode`; invalid UTF-8 and lone surrogates become U+FFFD).
- Decoding into structs (`encoding/json` decode.go): a key names a field exactly or, failing
  that, case-insensitively as `bytes.EqualFold` compares (simple folding orbits: `ſ` is `s`,
  KELVIN SIGN `K` is `k`; `ı` and `İ` are not `i`). Go <= 1.20 and Go >= 1.21 (which folds
  each rune to the smallest of its orbit) agree on that: measured by the differential test
  on dockerd 20.10 (go1.19) and 26.1.5 (go1.24), where `HostConf\u0131g` is an unknown key.
  The `go_new` switch is kept for a release that differs. A repeated key is decoded again into the same field: a
  struct merges, a pointer is reused when set, a slice reuses its elements, a map keeps its
  other keys. `null` sets a pointer, slice, map or interface to nil and leaves a struct, bool,
  string or number alone. A wrongly typed value makes the whole decode fail (dockerd answers
  400), as does a syntax error.
- The create wrapper (moby runconfig.ContainerConfigWrapper / ContainerConfigWrapper in 26):
  `*Config` embedded, `HostConfig *HostConfig` under the key "HostConfig", and the
  HostConfig's fields also promoted to the top level through an embedded `*HostConfig`
  (allocated as soon as one of its fields is decoded, even with null). `getHostConfig`
  applies the "HostConfig" pointer when set, else the top-level one.
- The request URI: `url.ParseRequestURI` (query cut at the first `?`, absolute-form with an
  authority, percent-escapes decoded into Path), gorilla/mux (a path that `path.Clean`
  changes is answered by a 301 redirect, no handler runs, so no plugin is asked), the
  `/v{version:[0-9.]+}` prefix, `{name:.*}` greedy; `url.ParseQuery` (pairs with `;` or a
  bad escape dropped; `+` is a space); `r.Form.Get` returns the first value.

The model covers the fields dockguard's rules read; others are skipped like unknown keys.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------- JSON text (RFC 8259) ----


class GoError(Exception):
    """dockerd would refuse this (syntax or type error): HTTP 400, nothing created."""


class Pairs(list):
    """A JSON object as the ordered list of its (key, value) pairs, repeats kept."""


_WS = " \t\r\n"
_NUM = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_ESC = {ord('"'): '"', ord("\\"): "\\", ord("/"): "/", ord("b"): "\b", ord("f"): "\f",
        ord("n"): "\n", ord("r"): "\r", ord("t"): "\t"}
MAX_NESTING = 10000  # encoding/json's scanner limit


class _Parser:
    def __init__(self, data: bytes):
        self.b = data
        self.i = 0

    def ws(self):
        while self.i < len(self.b) and self.b[self.i] in b" \t\r\n":
            self.i += 1

    def value(self, depth: int):
        if depth > MAX_NESTING:
            raise GoError("exceeded max depth")
        self.ws()
        if self.i >= len(self.b):
            raise GoError("unexpected end of JSON input")
        c = self.b[self.i]
        if c == ord("{"):
            self.i += 1
            out = Pairs()
            self.ws()
            if self.b[self.i:self.i + 1] == b"}":
                self.i += 1
                return out
            while True:
                self.ws()
                if self.b[self.i:self.i + 1] != b'"':
                    raise GoError("invalid character looking for beginning of object key string")
                k = self.string()
                self.ws()
                if self.b[self.i:self.i + 1] != b":":
                    raise GoError("invalid character after object key")
                self.i += 1
                out.append((k, self.value(depth + 1)))
                self.ws()
                t = self.b[self.i:self.i + 1]
                self.i += 1
                if t == b"}":
                    return out
                if t != b",":
                    raise GoError("invalid character after object key:value pair")
        if c == ord("["):
            self.i += 1
            arr: list = []
            self.ws()
            if self.b[self.i:self.i + 1] == b"]":
                self.i += 1
                return arr
            while True:
                arr.append(self.value(depth + 1))
                self.ws()
                t = self.b[self.i:self.i + 1]
                self.i += 1
                if t == b"]":
                    return arr
                if t != b",":
                    raise GoError("invalid character after array element")
        if c == ord('"'):
            return self.string()
        for lit, val in ((b"true", True), (b"false", False), (b"null", None)):
            if self.b.startswith(lit, self.i):
                self.i += len(lit)
                return val
        m = _NUM.match(self.b, self.i)
        if m and m.end() > self.i:
            self.i = m.end()
            text = m.group().decode()
            return Num(text)
        raise GoError(f"invalid character {chr(c)!r} looking for beginning of value")

    def string(self) -> str:
        self.i += 1  # opening quote
        out: list[str] = []
        raw = bytearray()

        def flush():
            if raw:
                out.append(raw.decode("utf-8", "replace"))  # Go: invalid UTF-8 -> U+FFFD
                raw.clear()
        while True:
            if self.i >= len(self.b):
                raise GoError("unexpected end of JSON input")
            c = self.b[self.i]
            if c == ord('"'):
                self.i += 1
                flush()
                return "".join(out)
            if c < 0x20:
                raise GoError("invalid character in string literal")
            if c == ord("\\"):
                flush()
                e = self.b[self.i + 1:self.i + 2]
                if e and e[0] in _ESC:
                    out.append(_ESC[e[0]])
                    self.i += 2
                    continue
                if e == b"u":
                    cp = self._hex4(self.i + 2)
                    self.i += 6
                    if 0xD800 <= cp < 0xDC00 and self.b[self.i:self.i + 2] == b"\\u":
                        lo = self._hex4(self.i + 2)
                        if 0xDC00 <= lo < 0xE000:
                            self.i += 6
                            out.append(chr(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)))
                            continue
                    out.append("\ufffd" if 0xD800 <= cp < 0xE000 else chr(cp))
                    continue
                raise GoError("invalid escape in string literal")
            raw.append(c)
            self.i += 1

    def _hex4(self, at: int) -> int:
        h = self.b[at:at + 4]
        if len(h) != 4 or any(x not in b"0123456789abcdefABCDEF" for x in h):
            raise GoError("invalid \\u escape")
        return int(h, 16)


class Num(str):
    """A JSON number kept as its text (Go parses it by the target's type)."""


def parse(data: bytes):
    """The first JSON value of `data` (json.Decoder.Decode: trailing bytes never read)."""
    p = _Parser(data)
    p.ws()
    if p.i >= len(data):
        raise EOFError("empty body")  # io.EOF: dockerd's create treats it as no config
    return p.value(0)


# ------------------------------------------------------------------ field-name folding ----

_OLD_EXTRA = {"\u017f": "s", "\u212a": "k"}                    # simple-fold orbits of s, k
_NEW_EXTRA = {"\u017f": "S", "\u212a": "K"}  # the smallest rune of each SimpleFold orbit, upper


def key_matches(field: str, key: str, go_new: bool) -> bool:
    """Does JSON `key` name the (ASCII) struct field `field` case-insensitively?"""
    if len(key) != len(field):
        return False
    for f, k in zip(field, key):
        if f == k:
            continue
        if go_new:
            kk = _NEW_EXTRA.get(k, k.upper() if k.isascii() else k)
            if kk != f.upper():
                return False
        else:
            kk = _OLD_EXTRA.get(k, k.lower() if k.isascii() else k)
            if kk != f.lower():
                return False
    return True


# --------------------------------------------------------------------- Go type schema ----
# ("bool",) ("string",) ("int",) ("strslice",) ("slice", T) ("map", T) ("struct", {name: T})
# ("ptr", T). Values: bool/str/int, lists, dicts (maps by key; structs by field name).

BOOL, STRING, INT, STRSLICE = ("bool",), ("string",), ("int",), ("strslice",)


def slice_of(t):
    return ("slice", t)


def map_of(t):
    return ("map", t)


def struct(**fields):
    return ("struct", fields)


def ptr(t):
    return ("ptr", t)


MOUNT = struct(Type=STRING, Source=STRING, Target=STRING, ReadOnly=BOOL,
               VolumeOptions=ptr(struct(DriverConfig=ptr(struct(Name=STRING, Options=map_of(STRING))))))
DEVICE = struct(PathOnHost=STRING, PathInContainer=STRING, CgroupPermissions=STRING)
HOST_CONFIG_FIELDS = dict(
    Binds=slice_of(STRING), NetworkMode=STRING, PidMode=STRING, IpcMode=STRING, UTSMode=STRING,
    UsernsMode=STRING, CgroupnsMode=STRING, Privileged=BOOL, CapAdd=STRSLICE, CapDrop=STRSLICE,
    SecurityOpt=slice_of(STRING), Mounts=slice_of(MOUNT), Tmpfs=map_of(STRING),
    VolumesFrom=slice_of(STRING), AutoRemove=BOOL, ReadonlyRootfs=BOOL, Runtime=STRING,
    MaskedPaths=slice_of(STRING), ReadonlyPaths=slice_of(STRING),
    # Resources (embedded in HostConfig: promoted fields, no pointer)
    Devices=slice_of(DEVICE), DeviceCgroupRules=slice_of(STRING), Memory=INT,
    KernelMemory=INT, BlkioWeight=INT,
)
CONFIG_FIELDS = dict(
    Image=STRING, Cmd=STRSLICE, Entrypoint=STRSLICE, Labels=map_of(STRING), User=STRING,
    Tty=BOOL, OpenStdin=BOOL, AttachStdin=BOOL, AttachStdout=BOOL, AttachStderr=BOOL,
    Env=slice_of(STRING),
)
HOST_CONFIG = struct(**HOST_CONFIG_FIELDS)


class _Unset:
    pass


UNSET = _Unset()


def _tname(v) -> str:
    return {bool: "bool", str: "string", Num: "number", list: "array", Pairs: "object"}.get(type(v), "null")


class Decoder:
    """encoding/json's decode of a parsed value into a typed Go value, errors collected."""

    def __init__(self, go_new: bool):
        self.go_new = go_new
        self.error: str | None = None

    def fail(self, msg: str):
        if self.error is None:
            self.error = msg

    def find_field(self, fields: dict, key: str):
        if key in fields:
            return key
        for name in fields:  # Go: the first field (in declaration order) that folds equal
            if key_matches(name, key, self.go_new):
                return name
        return None

    def into(self, t, cur, v):
        """Decode JSON value `v` into a Go value of type `t` currently holding `cur`."""
        kind = t[0]
        if v is None:
            if kind in ("ptr", "slice", "map", "strslice"):
                return UNSET
            return cur
        if kind == "bool":
            if isinstance(v, bool):
                return v
            return self._mismatch(t, v, cur)
        if kind == "string":
            if isinstance(v, str) and not isinstance(v, Num):
                return v
            return self._mismatch(t, v, cur)
        if kind == "int":
            if isinstance(v, Num) and re.fullmatch(r"-?[0-9]+", v):
                return int(v)
            return self._mismatch(t, v, cur)
        if kind == "strslice":
            # its UnmarshalJSON: a fresh []string, else a fresh [string]
            if isinstance(v, list):
                if all(isinstance(x, str) and not isinstance(x, Num) or x is None for x in v):
                    return ["" if x is None else x for x in v]
                return self._mismatch(t, v, cur)
            if isinstance(v, str) and not isinstance(v, Num):
                return [v]
            return self._mismatch(t, v, cur)
        if kind == "ptr":
            base = cur if cur is not UNSET else None
            return self.into(t[1], base, v) if base is not None else self.into(t[1], UNSET, v)
        if kind == "struct":
            if not isinstance(v, Pairs):
                return self._mismatch(t, v, cur)
            out = dict(cur) if isinstance(cur, dict) else {}
            for key, val in v:
                name = self.find_field(t[1], key)
                if name is None:
                    continue
                out[name] = self.into(t[1][name], out.get(name, UNSET), val)
            return out
        if kind == "map":
            if not isinstance(v, Pairs):
                return self._mismatch(t, v, cur)
            out = dict(cur) if isinstance(cur, dict) else {}
            for key, val in v:
                out[key] = self.into(t[1], UNSET, val)  # each element decoded afresh
            return out
        if kind == "slice":
            if not isinstance(v, list):
                return self._mismatch(t, v, cur)
            if not v:
                return []
            old = cur.backing if isinstance(cur, _GoSlice) else (list(cur) if isinstance(cur, list) else [])
            backing = list(old)
            out = _GoSlice()
            for i, x in enumerate(v):
                prev = backing[i] if i < len(backing) else UNSET
                out.append(self.into(t[1], prev, x))
            backing[:len(out)] = list(out)
            out.backing = backing
            return out
        raise AssertionError(t)

    def _mismatch(self, t, v, cur):
        self.fail(f"cannot unmarshal {_tname(v)} into Go value of type {t[0]}")
        return cur


class _GoSlice(list):
    """A decoded slice; `backing` holds elements past its length that a later, longer array
    decoded into it reuses (Go decodes element i into the element already there)."""

    backing: list


def clean(v):
    """Strip the model's bookkeeping: UNSET -> None, slices -> plain lists."""
    if v is UNSET:
        return None
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items() if x is not UNSET}
    if isinstance(v, list):
        return [clean(x) for x in v]
    return v


@dataclass
class Create:
    """What dockerd applies from a create body: Config fields and the effective HostConfig."""

    config: dict
    host_config: dict | None


def decode_create(data: bytes, go_new: bool) -> Create:
    """A create body as dockerd decodes it; raise GoError where dockerd answers 400."""
    try:
        v = parse(data)
    except EOFError:
        return Create({}, None)
    if not isinstance(v, Pairs):
        raise GoError(f"cannot unmarshal {_tname(v)} into Go value of type ContainerConfigWrapper")
    d = Decoder(go_new)
    # the wrapper's fields in Go's order of precedence: depth 0 (HostConfig, NetworkingConfig)
    # first, then the promoted Config and HostConfig fields (depth 1; no names shared)
    config: dict = {}
    inner = UNSET
    top = UNSET
    for key, val in v:
        if d.find_field({"HostConfig": 0, "NetworkingConfig": 0}, key) == "HostConfig":
            inner = d.into(ptr(HOST_CONFIG), inner, val)
            continue
        if d.find_field({"HostConfig": 0, "NetworkingConfig": 0}, key) == "NetworkingConfig":
            if val is not None and not isinstance(val, Pairs):
                d.fail("NetworkingConfig: not an object")
            continue
        name = d.find_field(CONFIG_FIELDS, key)
        if name is not None:
            config[name] = d.into(CONFIG_FIELDS[name], config.get(name, UNSET), val)
            continue
        name = d.find_field(HOST_CONFIG_FIELDS, key)
        if name is not None:
            if top is UNSET:
                top = {}  # the embedded *HostConfig is allocated on the way to its field
            top[name] = d.into(HOST_CONFIG_FIELDS[name], top.get(name, UNSET), val)
    if d.error:
        raise GoError(d.error)
    hc = inner if inner is not UNSET else top
    return Create(clean(config), None if hc is UNSET else clean(hc))


# ------------------------------------------------------------------ what breaks a rule ----

DANGEROUS_CAPS = frozenset({
    "SYS_MODULE", "SYS_ADMIN", "NET_ADMIN", "DAC_READ_SEARCH", "SYS_RAWIO", "SYS_PTRACE",
    "AUDIT_CONTROL", "BLOCK_SUSPEND", "WAKE_ALARM", "IPC_LOCK", "SYSLOG", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "MAC_ADMIN", "MAC_OVERRIDE", "SYS_BOOT", "SYS_PACCT",
    "SYS_TTY_CONFIG", "LINUX_IMMUTABLE", "BPF", "PERFMON", "CHECKPOINT_RESTORE", "AUDIT_READ",
    "NET_BROADCAST", "ALL"})
SENSITIVE = ("/", "/etc", "/proc", "/sys", "/dev", "/root", "/boot", "/usr", "/var", "/run")
NAMESPACE_FIELDS = ("NetworkMode", "PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode")


def _sensitive(path: str) -> bool:
    p = "/" + path.strip("/")
    return any(p == s or (s != "/" and p.startswith(s + "/")) for s in SENSITIVE)


def violations(hc: dict | None) -> list[str]:
    """What in an effective HostConfig (as the model decodes it, or as `docker inspect`
    shows it) breaks a rule of the default policy. Empty: harmless."""
    hc = hc or {}
    out = []
    if hc.get("Privileged"):
        out.append("privileged")
    for f in NAMESPACE_FIELDS:
        if (hc.get(f) or "") == "host":
            out.append(f"{f}=host")
    for cap in hc.get("CapAdd") or []:
        c = (cap or "").strip().upper()
        c = c[4:] if c.startswith("CAP_") else c
        if c in DANGEROUS_CAPS:
            out.append(f"cap {cap}")
    for b in hc.get("Binds") or []:
        src = (b or "").split(":")[0]
        if src.startswith("/") and _sensitive(src):
            out.append(f"bind {src}")
    for m in hc.get("Mounts") or []:
        m = m or {}
        if (m.get("Type") or "").lower() == "bind" and _sensitive(m.get("Source") or "/"):
            out.append(f"mount {m.get('Source')}")
    for s in hc.get("SecurityOpt") or []:
        if (s or "").replace(":", "=", 1).lower() in ("seccomp=unconfined", "apparmor=unconfined",
                                                     "label=disable"):
            out.append(f"securityopt {s}")
    for d in hc.get("Devices") or []:
        out.append(f"device {(d or {}).get('PathOnHost')}")
    return out


# ----------------------------------------------------------------------- request URI ----

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_HEXD = "0123456789abcdefABCDEF"


class NoHandler(Exception):
    """dockerd answers without running a handler (400, 301 redirect, 404): no plugin is asked."""


def _unescape(s: str, plus: bool) -> str:
    b = s.encode("utf-8", "surrogatepass")
    out = bytearray()
    i = 0
    while i < len(b):
        if b[i] == 0x25:
            h = b[i + 1:i + 3]
            if len(h) < 2 or chr(h[0]) not in _HEXD or chr(h[1]) not in _HEXD:
                raise ValueError("invalid URL escape")
            out.append(int(h, 16))
            i += 3
        elif plus and b[i] == 0x2B:
            out.append(0x20)
            i += 1
        else:
            out.append(b[i])
            i += 1
    return out.decode("utf-8", "replace")


def go_path_clean(p: str) -> str:
    """Go's path.Clean on a rooted path (lexical: `.`/`..` and repeated slashes)."""
    parts: list[str] = []
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts:
                parts.pop()
            continue
        parts.append(seg)
    return "/" + "/".join(parts)


def request_path(uri: str) -> str:
    """url.ParseRequestURI then gorilla/mux's cleaning: the decoded path a handler sees."""
    if not uri or any(ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        raise NoHandler("400: invalid request URI")
    rest = uri.split("?", 1)[0]
    if not rest.startswith("/"):
        m = _SCHEME.match(rest)
        if not m or rest[m.end():m.end() + 1] != ":":
            raise NoHandler("400: invalid URI for request")
        rest = rest[m.end() + 1:]
        if rest.startswith("//"):
            host, slash, tail = rest[2:].partition("/")
            if "%" in host or "@" in host:
                raise NoHandler("400: host not modelled")
            rest = slash + tail
        if not rest.startswith("/"):
            raise NoHandler("opaque or empty path")
    try:
        path = _unescape(rest, plus=False)
    except ValueError:
        raise NoHandler("400: invalid URL escape") from None
    cleaned = go_path_clean(path)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    if cleaned != path:
        raise NoHandler("301: mux redirects to the cleaned path")
    return path


def query_value(uri: str, name: str) -> str:
    """r.Form.Get(name) from the URI's query (url.ParseQuery; first value)."""
    _path, sep, q = uri.partition("?")
    if not sep:
        return ""
    for pair in q.split("&"):
        if not pair or ";" in pair:
            continue
        k, _, v = pair.partition("=")
        try:
            k, v = _unescape(k, True), _unescape(v, True)
        except ValueError:
            continue
        if k == name:
            return v
    return ""


# dockerd's routes that dockguard judges, in moby's registration order, as (method, regexp, action)
_ROUTES = [(m, re.compile("^" + p.replace("{name}", "(?P<name>.*)") + "$", re.S), a) for m, p, a in (
    ("POST", "/containers/create", "container.create"),
    ("POST", "/containers/{name}/kill", "container.kill"),
    ("POST", "/containers/{name}/restart", "container.restart"),
    ("POST", "/containers/{name}/start", "container.start"),
    ("POST", "/containers/{name}/stop", "container.stop"),
    ("POST", "/containers/{name}/rename", "container.rename"),
    ("POST", "/containers/{name}/update", "container.update"),
    ("POST", "/containers/{name}/exec", "exec.create"),
    ("POST", "/exec/{name}/start", "exec.start"),
    ("DELETE", "/containers/{name}", "container.delete"),
    ("POST", "/volumes/create", "volume.create"),
    ("GET", "/containers/json", "read"),
    ("GET", "/_ping", "read"),
)]
_VERSIONED = re.compile(r"^/v(?P<version>[0-9.]+)(?P<rest>/.*)$", re.S)


def route(method: str, uri: str) -> tuple[str, str, str | None]:
    """(action, name, version) of the handler dockerd runs for this request; NoHandler if none."""
    path = request_path(uri)
    version = None
    m = _VERSIONED.match(path)
    candidates = [(path, None)]
    if m:
        candidates.insert(0, (m.group("rest"), m.group("version")))
    for p, ver in candidates:
        for meth, rx, action in _ROUTES:
            mm = rx.match(p)
            if meth == method and mm:
                return action, (mm.groupdict().get("name") or ""), ver
    raise NoHandler("404 (or a route the model does not list)")
