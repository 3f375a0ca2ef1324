"""The hook-spec validator (hookbin/spec.py, hookbin/trust.py's pure parts) and the health
label parser (healthd/config.py), fuzzed: no crash on any input, only clear errors, and
what they accept is what they promise (a Go duration is Go's, a hook is well formed).
"""
from __future__ import annotations

import json
import os
import stat

from hypothesis import example, given, settings
from hypothesis import strategies as st

from healthd import config as health
from hookbin import policy as hookpolicy
from hookbin import spec as hookspec
from hookbin import trust

from .conftest import examples

# ---------------------------------------------------------------- hook-spec validator ----

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                    st.text(max_size=12), st.sampled_from(["/usr/bin/true", "rel/path", "/a\0b", "K=V", "=x"]))
HOOK_KEYS = ["path", "args", "env", "timeout", "Path", "extra"]
hooks = st.one_of(
    st.dictionaries(st.sampled_from(HOOK_KEYS), scalars | st.lists(scalars, max_size=3), max_size=5),
    st.fixed_dictionaries({"path": st.sampled_from(["/usr/bin/true", "/x", "x", ""]),
                           "args": st.lists(st.text(max_size=6), max_size=3),
                           "env": st.lists(st.sampled_from(["A=1", "PATH=/bin", "LD_PRELOAD=/x", "X", "=1"]), max_size=3)},
                          optional={"timeout": scalars}),
    scalars,
)
docs = st.one_of(
    st.dictionaries(st.sampled_from(["prestart", "poststart", "poststop", "Prestart", "other"]),
                    st.none() | st.lists(hooks, max_size=3) | scalars, max_size=4),
    st.lists(hooks, max_size=2), scalars,
)


@settings(max_examples=examples(400))
@given(docs)
def test_hook_spec_shape_never_crashes_and_accepts_only_well_formed(doc):
    problems = hookspec.check_shape(doc)
    assert isinstance(problems, list) and all(isinstance(p, str) and p for p in problems)
    if problems:
        return
    assert isinstance(doc, dict) and set(doc) <= set(hookspec.PHASES)
    spec = hookspec.normalize(doc)
    for phase in hookspec.PHASES:
        for hook in spec[phase]:
            assert set(hook) <= set(hookspec.HOOK_KEYS) and set(hookspec.REQUIRED_HOOK_KEYS) <= set(hook)
            assert isinstance(hook["path"], str) and os.path.isabs(hook["path"]) and "\0" not in hook["path"]
            assert all(isinstance(a, str) and "\0" not in a for a in hook["args"])
            assert all(isinstance(e, str) and "=" in e and not e.startswith("=") for e in hook["env"])
            t = hook.get("timeout", 1)
            assert type(t) is int and hookspec.TIMEOUT_MIN <= t <= hookspec.TIMEOUT_MAX


@settings(max_examples=examples(300))
@given(st.one_of(st.text(max_size=200), docs.map(json.dumps),
                 st.sampled_from(['{"prestart": NaN}', '{"prestart": [] ', "\ufeff{}", '{"prestart":[{"timeout":1e400}]}'])))
def test_hook_spec_text_gives_a_spec_or_a_clear_error(text):
    try:
        doc = hookspec.parse_spec_text(text, "fuzz.json")
    except hookspec.SpecError as exc:
        assert exc.problems and all(isinstance(p, str) and p.startswith("fuzz.json") for p in exc.problems)
        return
    assert hookspec.check_shape(doc) == []


@settings(max_examples=examples(300))
@given(scalars)
@example(True)
@example(120.0)
@example(2**64)
def test_hook_timeout_only_integers_in_range(value):
    ok = hookspec.check_timeout(value, "t") == []
    assert ok == (type(value) is int and 1 <= value <= 120)


@settings(max_examples=examples(300))
@given(st.text(st.sampled_from("/ab,. \t\n\x00"), max_size=30) | scalars)
def test_hook_spec_label_splits_or_refuses(value):
    try:
        paths = hookspec.split_label(value)
    except hookspec.SpecError as exc:
        assert exc.problems
        return
    assert paths and all(p and p == p.strip() for p in paths)
    assert ",".join(paths).replace(" ", "") == value.replace(" ", "").strip().strip("\t\n") or "," in value


ENV_NAMES = sorted(hookpolicy.BUILTIN_ENV) + ["LD_PRELOAD", "PATH", "BASH_ENV", "X", ""]


@settings(max_examples=examples(300))
@given(st.lists(st.tuples(st.sampled_from(ENV_NAMES), st.text(max_size=20)).map("=".join), max_size=4))
def test_hook_env_allow_list(env):
    policy = hookpolicy.HookPolicy()
    problems = hookspec.check_env(env, policy, "h")
    assert all(isinstance(p, str) for p in problems)
    for i, entry in enumerate(env):
        name = entry.partition("=")[0]
        if name not in policy.env_allow:
            assert any(p.startswith(f"h.env[{i}]") for p in problems), entry


@settings(max_examples=examples(300))
@given(st.sampled_from(sorted(hookspec.SHIPPED)),
       st.lists(st.sampled_from(["--name", "eth0", "--ip", "10.0.0.2/24", "--mtu", "x", "-", "--", "/",
                                 "--root", "/var/lib/lxcfs", "../x", "--help", "\0"]) | st.text(max_size=8), max_size=6))
def test_shipped_hook_arguments_never_crash(program, argv):
    problems = hookspec.check_program_args(program, argv, hookpolicy.HookPolicy(), {}, "h")
    assert all(isinstance(p, str) and p.startswith("h.args") for p in problems)


MODES = st.sampled_from([stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK, stat.S_IFCHR]).flatmap(
    lambda kind: st.integers(0, 0o7777).map(lambda perm: kind | perm))


@settings(max_examples=examples(400))
@given(st.lists(st.tuples(st.text(max_size=8), st.integers(-1, 70000), MODES), min_size=1, max_size=5),
       st.sampled_from(["file", "dir"]))
def test_trust_judges_every_component(nodes, want):
    problems = trust.judge_chain(nodes, want)
    assert all(isinstance(p, str) for p in problems)
    if not problems:  # trusted: root's alone, directories down to the wanted kind
        for i, (_p, uid, mode) in enumerate(nodes):
            last = i == len(nodes) - 1
            assert uid == 0 and not mode & 0o022
            assert stat.S_ISDIR(mode) if (not last or want == "dir") else stat.S_ISREG(mode)


@settings(max_examples=examples(400))
@given(st.text(st.sampled_from("/ab."), max_size=12), st.text(st.sampled_from("/ab."), max_size=8))
@example("/hooksX", "/hooks")
@example("/a/../b", "/a")
def test_within_is_by_whole_components(path, directory):
    p, d = os.path.normpath(path or "."), os.path.normpath(directory or ".")
    assert trust.within(path or ".", directory or ".") == (p == d or p.startswith(d.rstrip("/") + "/"))


# ---------------------------------------------------------------- health labels ----

_UNITS = {"ns": 1, "us": 10**3, "\u00b5s": 10**3, "\u03bcs": 10**3, "ms": 10**6, "s": 10**9,
          "m": 60 * 10**9, "h": 3600 * 10**9}


def go_parse_duration(s: str) -> int:
    """Go's time.ParseDuration, written from its documentation and algorithm: a sign, then
    one or more ASCII decimal numbers (with an optional fraction) each with a unit; "0" alone
    may omit the unit; overflow past int64 is an error. Raises ValueError."""
    orig, neg = s, False
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(orig)
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise ValueError(orig)
        i = 0
        while i < len(s) and "0" <= s[i] <= "9":
            i += 1
        whole, s = s[:i], s[i:]
        frac = ""
        if s[:1] == ".":
            j = 1
            while j < len(s) and "0" <= s[j] <= "9":
                j += 1
            frac, s = s[1:j], s[j:]
            if not whole and not frac:
                raise ValueError(orig)
        k = 0
        while k < len(s) and not (s[k] == "." or "0" <= s[k] <= "9"):
            k += 1
        unit, s = s[:k], s[k:]
        if unit not in _UNITS:
            raise ValueError(orig)
        total += int(whole or 0) * _UNITS[unit]
        if frac:
            total += int(frac) * _UNITS[unit] // 10 ** len(frac)
        if total > 2**63:
            raise ValueError(orig)
    if neg:
        return -total
    if total > 2**63 - 1:
        raise ValueError(orig)
    return total


DURATION_CHARS = st.sampled_from(list("0123456789.+-hmsun") + ["\u00b5", "\u03bc", "\u0661", "\u00b2", " ", "e"])


@settings(max_examples=examples(600))
@given(st.text(DURATION_CHARS, max_size=10) | st.sampled_from(["-", "+", "\u0661s", "1.s", ".s", "-0", "1h2m3.5s"]))
def test_duration_is_gos(text):
    try:
        want = go_parse_duration(text)
    except ValueError:
        want = None
    try:
        got = health.parse_duration(text)
    except ValueError:
        got = None
    if want is not None and got is not None and abs(want) >= 2**63 - 10:
        return  # Go's float fraction arithmetic decides the last nanoseconds at the very edge
    assert got == want, text


LABEL_KEYS = [health.PREFIX + k for k in health.KINDS + health.OPTIONS] + [health.PREFIX + "x", "other"]
LABEL_VALUES = st.one_of(st.text(max_size=12), st.sampled_from(
    ["0", "1s", "-1s", "1ms", "500us", "80", "80/health", "65536", "[\"/bin/true\"]", "[1]", "[", "true",
     "TRUE", "yes", "3", "-3", "2147483648", " 1", "\u0661", "1h30m", "99999999999999999999h", "8080/a b"]))


@settings(max_examples=examples(400))
@given(st.dictionaries(st.sampled_from(LABEL_KEYS), LABEL_VALUES, max_size=5), st.booleans())
def test_health_labels_parse_or_name_the_label(labels, engine_healthcheck):
    problems = health.check_labels(labels)
    assert all(isinstance(p, str) and p.startswith(health.PREFIX) or p.startswith("declare") for p in problems)
    spec, why = health.spec_from_labels(labels, engine_healthcheck)
    assert (spec is None) or not why
    if problems:
        assert spec is None and why
    if spec is not None:
        assert spec.kind in health.KINDS + ("engine",)
        assert spec.interval > 0 and spec.timeout > 0 and spec.start_period >= 0
        assert 1 <= spec.retries <= health.MAX_RETRIES
        if spec.kind in ("tcp", "http"):
            assert 1 <= spec.port <= 65535
        if spec.kind == "http":
            assert spec.path.startswith("/") and not any(c.isspace() or ord(c) < 32 for c in spec.path)
        json.dumps(spec.to_json())
        for key in ("retries",):
            v = labels.get(health.PREFIX + key, "")
            if v:
                assert v.isascii(), f"non-ASCII digits accepted as {key}: {v!r}"
