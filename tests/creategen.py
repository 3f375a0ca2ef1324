"""Generated container-create requests, hostile in the ways dockerd's reading allows.

One generator for the fuzz tests (choices drawn by hypothesis, shrinkable) and the
differential test against real dockerds (choices from a seeded random.Random): key
spellings (ASCII case, `ſ`, `K`, `ı`, `İ`, \\u escapes), repeated keys, settings at the top
level or under "HostConfig" (repeated, or set back to null), string-or-list fields, wrong
types, noise keys; URI forms (absolute-form, %-escapes, /vX.Y, query) and the transfer
encoding (Content-Length or chunked).
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field


class Chooser:
    """The generator's only source of choices."""

    def choice(self, seq):
        raise NotImplementedError

    def chance(self, p: float) -> bool:
        raise NotImplementedError

    def count(self, lo: int, hi: int) -> int:
        raise NotImplementedError


class RandomChooser(Chooser):
    def __init__(self, rng: random.Random):
        self.rng = rng

    def choice(self, seq):
        return self.rng.choice(list(seq))

    def chance(self, p):
        return self.rng.random() < p

    def count(self, lo, hi):
        return self.rng.randint(lo, hi)


class DrawChooser(Chooser):
    """Choices drawn from hypothesis's `st.data()`: failures shrink to small requests."""

    def __init__(self, data):
        from hypothesis import strategies as st
        self.data, self.st = data, st

    def choice(self, seq):
        return self.data.draw(self.st.sampled_from(list(seq)))

    def chance(self, p):
        return self.data.draw(self.st.integers(0, 99)) < int(p * 100)

    def count(self, lo, hi):
        return self.data.draw(self.st.integers(lo, hi))


# Settings that break a rule, and harmless twins, as (field, JSON value) — values dockerd
# accepts at create on both engines (a harmless one refused is a false denial).
DANGEROUS = [
    ("Privileged", True),
    ("PidMode", "host"), ("IpcMode", "host"), ("NetworkMode", "host"), ("UTSMode", "host"),
    ("UsernsMode", "host"),
    ("CapAdd", ["SYS_ADMIN"]), ("CapAdd", "NET_ADMIN"), ("CapAdd", ["CAP_SYS_PTRACE"]),
    ("CapAdd", ["all"]), ("CapAdd", ["CHOWN", "sys_module"]),
    ("Binds", ["/etc:/x"]), ("Binds", ["/:/host:ro"]), ("Binds", ["/proc:/p"]),
    ("Mounts", [{"Type": "bind", "Source": "/etc", "Target": "/x"}]),
    ("SecurityOpt", ["seccomp=unconfined"]), ("SecurityOpt", ["seccomp:unconfined"]),
    ("SecurityOpt", ["apparmor=unconfined"]),
    ("Devices", [{"PathOnHost": "/dev/mem", "PathInContainer": "/dev/mem", "CgroupPermissions": "rwm"}]),
]
HARMLESS = [
    ("Privileged", False), ("Privileged", None),
    ("PidMode", ""), ("IpcMode", "private"), ("NetworkMode", "none"), ("UTSMode", ""),
    ("CapAdd", ["CHOWN"]), ("CapAdd", "NET_BIND_SERVICE"), ("CapAdd", []), ("CapAdd", None),
    ("Binds", ["dgfuzzvol:/data"]), ("Binds", None), ("Binds", []),
    ("Mounts", [{"Type": "tmpfs", "Target": "/scratch"}]), ("Mounts", None),
    ("SecurityOpt", ["no-new-privileges"]), ("SecurityOpt", None),
    ("ReadonlyRootfs", True), ("Memory", 67108864), ("CapDrop", ["NET_RAW"]),
]
WRONG_TYPES = [("Privileged", "true"), ("Privileged", 1), ("CapAdd", 5), ("Binds", "/etc:/x"),
               ("PidMode", ["host"]), ("Mounts", {"Type": "bind"}), ("Memory", 1.5)]
NOISE = [("Capabilities", ["CAP_SYS_ADMIN"]), ("Hostname", "fuzz"), ("NetworkingConfig", {}),
         ("NetworkingConfig", None), ("Labels", {"a": "b", "A": "c"}), ("Env", ["A=1"]),
         ("XUnknownKey", {"Privileged": True}), ("Cpuset", "0")]

# Spellings Go may fold to the field's name (ASCII case everywhere; the rest by Go release).
FOLDS = {"s": ["S", "\u017f"], "k": ["K", "\u212a"], "i": ["I", "\u0131", "\u0130"]}


def spell(ch: Chooser, name: str) -> str:
    """A spelling of `name`: mostly as is, often case-changed, sometimes with Unicode folds."""
    mode = ch.choice(["exact", "exact", "lower", "upper", "mixed", "unicode"])
    if mode == "exact":
        return name
    if mode == "lower":
        return name.lower()
    if mode == "upper":
        return name.upper()
    out = []
    for c in name:
        if mode == "unicode" and c.lower() in FOLDS and ch.chance(0.5):
            out.append(ch.choice(FOLDS[c.lower()]))
        elif c.isalpha() and ch.chance(0.3):
            out.append(c.swapcase())
        else:
            out.append(c)
    return "".join(out)


def _dump_key(ch: Chooser, key: str) -> str:
    return json.dumps(key, ensure_ascii=ch.chance(0.2))


def _obj(ch: Chooser, pairs: list[tuple[str, str]]) -> str:
    sep = ch.choice([",", ", ", ",\n "])
    return "{" + sep.join(f"{_dump_key(ch, k)}:{v}" for k, v in pairs) + "}"


@dataclass
class Request:
    """One generated create request, and how to send it."""

    target: str
    body: str
    transfer: str = "length"  # or "chunked"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


TARGETS = [
    ("/v1.41/containers/create", "plain"),
    ("/containers/create", "no version"),
    ("http://docker/v1.41/containers/create", "absolute-form"),
    ("http:/v1.41/containers/create", "scheme, no authority"),
    ("/v1.41/containers/%63reate", "%-escape"),
    ("/v1.41/%63ontainers/create", "%-escape"),
    ("/v1.41/containers/create%3Fname=x", "escaped ?"),
    ("/v1.41.0/containers/create", "version 1.41.0"),
    ("/v1.41/containers/create?name=", "empty name"),
    ("/v1.41/containers/create?x=1;name=y", "semicolon query"),
    ("/v1.41//containers/create", "double slash (mux redirects)"),
    ("/v1.41/containers/./create", "dot segment (mux redirects)"),
    ("/v1.41/containers/create#frag", "fragment"),
]


def gen_create(ch: Chooser) -> Request:
    """One create request: a few settings, each at the top level or under HostConfig."""
    notes: list[str] = []
    top: list[tuple[str, str]] = [(spell(ch, "Image"), '"busybox"')]
    top.append((spell(ch, "Cmd"), ch.choice(['["true"]', '"true"'])))
    hcs: list[list[tuple[str, str]]] = [[] for _ in range(ch.count(0, 2))]
    for _ in range(ch.count(1, 4)):
        pool = ch.choice(["dangerous", "dangerous", "harmless", "harmless", "wrong", "noise"])
        fname, value = ch.choice({"dangerous": DANGEROUS, "harmless": HARMLESS,
                                  "wrong": WRONG_TYPES, "noise": NOISE}[pool])
        key = spell(ch, fname)
        text = json.dumps(value, ensure_ascii=ch.chance(0.3))
        if hcs and ch.chance(0.6):
            hcs[ch.count(0, len(hcs) - 1)].append((key, text))
            notes.append(f"HostConfig.{key}={text}")
        else:
            top.append((key, text))
            notes.append(f"top.{key}={text}")
        if ch.chance(0.2):  # the same field again, maybe in another spelling and place
            _f2, v2 = ch.choice([x for x in DANGEROUS + HARMLESS if x[0] == fname] or [(fname, None)])
            key2, text2 = spell(ch, fname), json.dumps(v2)
            (hcs[0] if hcs and ch.chance(0.5) else top).append((key2, text2))
            notes.append(f"dup {key2}={text2}")
    for hc in hcs:
        form = ch.choice(["object", "object", "object", "null-after", "null-before"])
        hkey = spell(ch, "HostConfig")
        if form == "null-before":
            top.append((hkey, "null"))
        top.append((hkey, _obj(ch, hc)))
        if form == "null-after":
            top.append((spell(ch, "HostConfig"), "null"))
        notes.append(f"HostConfig as {hkey!r} ({form})")
    if ch.chance(0.15):
        top.append((spell(ch, "HostConfig"), ch.choice(['"x"', "[]", "1"])))
        notes.append("HostConfig of a wrong type")
    order = list(range(len(top)))
    if ch.chance(0.5):  # shuffle the top-level pairs
        shuffled = []
        while order:
            shuffled.append(order.pop(ch.count(0, len(order) - 1)))
        order = shuffled
    body = _obj(ch, [top[i] for i in order])
    if ch.chance(0.1):
        body += ch.choice([" ", "\n{}", " garbage", "}"])
        notes.append("trailing bytes")
    target, tnote = ch.choice(TARGETS) if ch.chance(0.4) else TARGETS[0]
    if tnote != "plain":
        notes.append(f"target: {tnote}")
    transfer = "chunked" if ch.chance(0.08) else "length"
    return Request(target, body, transfer, notes)
