"""JSON read the way dockerd's Go `encoding/json` reads it into its structs.

Every difference between how we read a body and how dockerd reads it is a bypass, so:

- Struct fields match keys case-insensitively with Go's simple folding: ASCII case, and
  `ſ` (U+017F) is `s` (checked on dockerd 20.10: `HoſtConfig` is `HostConfig`). A key
  holding `K` U+212A, `ı` U+0131 or `İ` U+0130 is *ambiguous* and refused: their folding
  was expected to differ across Go releases; the differential test measured `K` folding to
  `k` and `ı`/`İ` to nothing on both go1.19 (dockerd 20.10) and go1.24 (26), so refusing
  them is strictness only (tests/corpus/differential).
- Map fields (Labels, DriverOpts, Tmpfs, ...) keep their keys exactly.
- A repeated key (exactly, or as a case variant) is decoded again *into* the value already
  there: objects merge, arrays merge element by element (Go reuses the slice's elements),
  everything else is replaced. Keeping an object's key/value pairs in order and
  concatenating the pairs of repeated objects gives exactly that.
- `null` never erases an object or a scalar we already saw (Go keeps a struct, bool,
  string or number on null; `"Privileged": true, "Privileged": null` is privileged);
  reading it as still present can only make us stricter, never laxer. Where that would
  change *which* fields dockerd applies (the create/start wrapper's `*HostConfig`), the
  caller reads the field with `pointer_obj`, which models the pointer exactly.
- Only the first JSON value of a body counts; dockerd ignores trailing bytes.
- Fields dockerd accepts as a string or a list (strslice: Cmd, Entrypoint, CapAdd) are
  read in both forms.
"""
from __future__ import annotations

import json

from dockguard.util import DockguardError

_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_ASCII_LOWER[0x017F] = ord("s")  # LATIN SMALL LETTER LONG S folds to s in every Go release
# KELVIN SIGN, DOTLESS I, CAPITAL I WITH DOT: fold differs by Go release (Go >= 1.21 folds
# with unicode.ToUpper(unicode.ToLower(r)), so `ı` and `İ` both become `I` there, not before)
_AMBIGUOUS = ("\u212a", "\u0131", "\u0130")
MAX_DEPTH = 64


class BodyError(DockguardError, ValueError):
    """The body is not something dockerd would accept, or not something we can read safely."""


def fold(key: str) -> str:
    return key.translate(_ASCII_LOWER)


class Obj:
    """A JSON object as ordered key/value pairs, read as a Go struct or a Go map."""

    __slots__ = ("pairs", "_folded")

    def __init__(self, pairs: list[tuple[str, object]]):
        self.pairs = pairs
        self._folded: dict[str, object] | None = None

    def _index(self) -> dict[str, object]:
        """Folded key -> value, repeated keys resolved as Go resolves them (once per object)."""
        if self._folded is None:
            out: dict[str, object] = {}
            for key, value in self.pairs:
                for ch in _AMBIGUOUS:
                    if ch in key:
                        raise BodyError(f"ambiguous key {key!r}: Go releases fold {ch!r} differently")
                k = fold(key)
                out[k] = _merge(out.get(k, _MISSING), value)
            self._folded = out
        return self._folded

    def get(self, name: str, default=None):
        """Struct field `name` (give it in lower case)."""
        v = self._index().get(name, _MISSING)
        return default if v is _MISSING else v

    def has(self, name: str) -> bool:
        return name in self._index()

    def as_map(self) -> dict[str, object]:
        """The object as a Go map: exact keys, later duplicates win, objects merge."""
        out: dict[str, object] = {}
        for key, value in self.pairs:
            out[key] = _merge(out.get(key, _MISSING), value)
        return out

    def __repr__(self) -> str:
        return f"Obj({self.pairs!r})"


class _Missing:
    __slots__ = ()


_MISSING = _Missing()


class _Slice(list):
    """A list as Go's slice after decoding: `backing` keeps the elements past its length,
    which a later, longer array decoded into the same slice brings back."""

    __slots__ = ("backing",)


def _merge(old, new):
    if new is None and old is not _MISSING and not isinstance(old, list):
        # Go ignores null for a struct, bool, string or number: `"Privileged": true,
        # "Privileged": null` stays true (a pointer or interface set to nil: kept, stricter)
        return old
    if isinstance(old, Obj):
        if isinstance(new, Obj):
            return Obj(old.pairs + new.pairs)
    if isinstance(old, list) and isinstance(new, list) and new:
        # Go decodes an array into the slice already there, element i into element i
        # (golang/go#21092; its fix was reverted in #39427): objects merge element-wise.
        # Keeping every element ever seen (Go may have reallocated) is only ever stricter.
        backing = list(getattr(old, "backing", old))
        out = _Slice(_merge(backing[i], v) if i < len(backing) else v for i, v in enumerate(new))
        backing[:len(out)] = out
        out.backing = backing
        return out
    return new


def decode(data: bytes | str) -> object:
    """Decode the first JSON value of `data` with objects as `Obj`; raise BodyError."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BodyError(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from None
    decoder = json.JSONDecoder(object_pairs_hook=Obj, parse_constant=_reject_constant)
    text = data.lstrip(" \t\r\n")
    if not text:
        raise BodyError("body is empty")
    try:
        value, _end = decoder.raw_decode(text)
    except RecursionError:
        raise BodyError("body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise BodyError(f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    _check_depth(value, 0)
    return value


def _reject_constant(name: str):
    raise BodyError(f"body is not JSON: {name} is not a JSON value")


def _check_depth(value, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BodyError(f"body is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Obj):
        for _k, v in value.pairs:
            if isinstance(v, (Obj, list)):
                _check_depth(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (Obj, list)):
                _check_depth(v, depth + 1)


# ---- typed field access: a wrongly typed field is a clear error, as it is for dockerd ----

def _need_obj(o, path: str) -> None:
    """A field is read from an object only: a body or member that is a number, string or
    list where a struct belongs is dockerd's 400 and our clear error, never a traceback."""
    if not isinstance(o, Obj):
        raise BodyError(f"{path or 'body'} must be an object, not {_jtype(o)}")


def _field(o: Obj | None, name: str, path: str):
    """Member `name` of the object `o`; None when `o` is absent or the member absent or null."""
    if o is None:
        return None
    _need_obj(o, path)
    return o.get(name)


def _where(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def obj(o: Obj | None, name: str, path: str = "") -> Obj | None:
    v = _field(o, name, path)
    if v is None or isinstance(v, Obj):
        return v
    raise BodyError(f"{_where(path, name)} must be an object, not {_jtype(v)}")


def pointer_obj(o: Obj | None, name: str, path: str = "") -> Obj | None:
    """A *pointer*-to-struct field (`*HostConfig`): unlike a struct value, Go sets the pointer
    to nil on `null`, and an object after that starts afresh. So the field is the merge of the
    objects given after its last `null` (None when absent or last set to null)."""
    if o is None:
        return None
    _need_obj(o, path)
    o._index()  # refuses ambiguous keys first, as every lookup does
    cur: Obj | None = None
    for key, value in o.pairs:
        if fold(key) != name:
            continue
        if value is None:
            cur = None
        elif isinstance(value, Obj):
            cur = value if cur is None else Obj(cur.pairs + value.pairs)
        else:
            raise BodyError(f"{_where(path, name)} must be an object, not {_jtype(value)}")
    return cur


def boolean(o: Obj | None, name: str, path: str = "") -> bool:
    v = _field(o, name, path)
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    raise BodyError(f"{_where(path, name)} must be a boolean, not {_jtype(v)}")


def integer(o: Obj | None, name: str, path: str = "") -> int:
    v = _field(o, name, path)
    if v is None:
        return 0
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)  # Go accepts 1e3 for an int field
    raise BodyError(f"{_where(path, name)} must be an integer, not {_jtype(v)}")


def string(o: Obj | None, name: str, path: str = "") -> str:
    v = _field(o, name, path)
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    raise BodyError(f"{_where(path, name)} must be a string, not {_jtype(v)}")


def strings(o: Obj | None, name: str, path: str = "", *, strslice: bool = False) -> list[str] | None:
    """A []string field (None when absent or null); `strslice` also takes a bare string."""
    v = _field(o, name, path)
    if v is None:
        return None
    if strslice and isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    kind = "a string or a list of strings" if strslice else "a list of strings"
    raise BodyError(f"{_where(path, name)} must be {kind}")


def objects(o: Obj | None, name: str, path: str = "") -> list[Obj]:
    """A []struct field; null elements are skipped (Go leaves them zero)."""
    v = _field(o, name, path)
    if v is None:
        return []
    if isinstance(v, list) and all(x is None or isinstance(x, Obj) for x in v):
        return [x for x in v if x is not None]
    raise BodyError(f"{_where(path, name)} must be a list of objects")


def string_map(o: Obj | None, name: str, path: str = "") -> dict[str, str]:
    v = _field(o, name, path)
    if v is None:
        return {}
    if not isinstance(v, Obj):
        raise BodyError(f"{_where(path, name)} must be an object of strings, not {_jtype(v)}")
    m = v.as_map()
    for k, val in m.items():
        if not isinstance(val, str):
            raise BodyError(f"{_where(path, name)}[{k!r}] must be a string, not {_jtype(val)}")
    return m  # type: ignore[return-value]


def string_map_keys(o: Obj | None, name: str, path: str = "") -> list[str]:
    """The keys of a map field whose values we do not read (map[string]struct{})."""
    v = _field(o, name, path)
    if v is None:
        return []
    if not isinstance(v, Obj):
        raise BodyError(f"{_where(path, name)} must be an object, not {_jtype(v)}")
    return list(v.as_map())


def _jtype(v) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, Obj):
        return "an object"
    return "null"
