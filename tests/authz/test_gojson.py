"""authz.gojson: JSON read as Go's encoding/json reads it into dockerd's structs."""
from __future__ import annotations

import pytest

from authz import gojson as g
from authz.gojson import BodyError, Obj


def test_struct_fields_fold_ascii_case():
    o = g.decode('{"HostConfig": {"Privileged": true}}')
    assert isinstance(o, Obj)
    assert g.boolean(g.obj(o, "hostconfig"), "privileged") is True
    o = g.decode('{"hOsTcOnFiG": {"PRIVILEGED": true}}')
    assert g.boolean(g.obj(o, "hostconfig"), "privileged") is True


def test_long_s_folds_to_s():
    o = g.decode('{"Ho\u017ftConfig": {"Privileged": true}}')
    assert g.obj(o, "hostconfig") is not None
    assert g.fold("Ho\u017ftConfig") == "hostconfig"


@pytest.mark.parametrize("key", ["\u212aernelMemory", "Pr\u0131vileged", "Pr\u0130vileged"])
def test_keys_folding_differently_across_go_releases_are_refused(key):
    o = g.decode('{"%s": true}' % key)
    with pytest.raises(BodyError, match="ambiguous key"):
        o.get("privileged")


def test_ambiguous_characters_in_map_keys_are_fine():
    # Labels are a Go map: keys are kept exactly and never folded
    o = g.decode('{"Labels": {"\u212a": "v", "\u0131": "w"}}')
    assert g.string_map(o, "labels") == {"\u212a": "v", "\u0131": "w"}


def test_map_keys_keep_their_case():
    o = g.decode('{"Labels": {"A": "1", "a": "2"}}')
    assert g.string_map(o, "labels") == {"A": "1", "a": "2"}


def test_repeated_objects_merge_as_go_decodes_into_them():
    o = g.decode('{"HostConfig": {"PidMode": "host"}, "HostConfig": {"Memory": 1}}')
    hc = g.obj(o, "hostconfig")
    assert g.string(hc, "pidmode") == "host"
    assert g.integer(hc, "memory") == 1


def test_repeated_case_variant_objects_merge():
    o = g.decode('{"HostConfig": {"PidMode": "host"}, "hostconfig": {"Memory": 1}}')
    assert g.string(g.obj(o, "hostconfig"), "pidmode") == "host"


def test_repeated_scalar_later_wins():
    assert g.boolean(g.decode('{"Privileged": true, "privileged": false}'), "privileged") is False
    assert g.boolean(g.decode('{"privileged": false, "PRIVILEGED": true}'), "privileged") is True


def test_null_never_erases_an_object_already_seen():
    o = g.decode('{"HostConfig": {"Privileged": true}, "HostConfig": null}')
    assert g.boolean(g.obj(o, "hostconfig"), "privileged") is True


def test_scalar_replaces_object():
    o = g.decode('{"HostConfig": {"Privileged": true}, "HostConfig": 5}')
    with pytest.raises(BodyError, match="hostconfig must be an object, not a number"):
        g.obj(o, "hostconfig")


def test_map_duplicates_later_wins_and_objects_merge():
    o = g.decode('{"Labels": {"a": "1", "a": "2"}}')
    assert g.string_map(o, "labels") == {"a": "2"}


def test_only_the_first_value_counts():
    assert g.boolean(g.decode('{"Privileged": false} {"Privileged": true}'), "privileged") is False
    assert g.decode(' \n{"A": 1}garbage').get("a") == 1


@pytest.mark.parametrize("text,match", [
    ("", "empty"),
    ("   ", "empty"),
    ('{"Image": ', "not JSON"),
    ("NaN", "NaN is not a JSON value"),
    ('{"Memory": Infinity}', "Infinity is not a JSON value"),
    ('{"Memory": -Infinity}', "not a JSON value"),
    (b"\xff\xfe{}", "not UTF-8"),
])
def test_undecodable_bodies(text, match):
    with pytest.raises(BodyError, match=match):
        g.decode(text)


def test_depth_limit():
    ok = "[" * g.MAX_DEPTH + "]" * g.MAX_DEPTH
    g.decode(ok)
    deep = "[" * (g.MAX_DEPTH + 2) + "]" * (g.MAX_DEPTH + 2)
    with pytest.raises(BodyError, match="nested deeper"):
        g.decode(deep)
    deep_obj = '{"a":' * 100 + "1" + "}" * 100
    with pytest.raises(BodyError, match="nested"):
        g.decode(deep_obj)


def test_recursion_is_a_body_error_not_a_crash():
    with pytest.raises(BodyError, match="nested"):
        g.decode("[" * 200000)


def test_typed_access_errors_name_the_field():
    o = g.decode('{"HostConfig": {"Privileged": "yes", "Binds": "/etc:/x", "KernelMemory": 1.5,'
                 ' "CapAdd": 5, "Labels": {"a": 1}, "Mounts": [1], "Devices": {}, "PidMode": 1}}')
    hc = g.obj(o, "hostconfig")
    with pytest.raises(BodyError, match=r"^HostConfig\.privileged must be a boolean, not a string$"):
        g.boolean(hc, "privileged", "HostConfig")
    with pytest.raises(BodyError, match=r"HostConfig\.binds must be a list of strings"):
        g.strings(hc, "binds", "HostConfig")
    with pytest.raises(BodyError, match=r"HostConfig\.kernelmemory must be an integer, not a number"):
        g.integer(hc, "kernelmemory", "HostConfig")
    with pytest.raises(BodyError, match="a string or a list of strings"):
        g.strings(hc, "capadd", "HostConfig", strslice=True)
    with pytest.raises(BodyError, match=r"\['a'\] must be a string, not a number"):
        g.string_map(hc, "labels", "HostConfig")
    with pytest.raises(BodyError, match="must be a list of objects"):
        g.objects(hc, "mounts", "HostConfig")
    with pytest.raises(BodyError, match="must be a list of objects"):
        g.objects(hc, "devices", "HostConfig")
    with pytest.raises(BodyError, match="must be a string, not a number"):
        g.string(hc, "pidmode", "HostConfig")


def test_typed_access_defaults():
    o = g.decode('{"A": null}')
    assert g.boolean(o, "a") is False and g.boolean(None, "a") is False
    assert g.integer(o, "a") == 0 and g.integer(o, "missing") == 0
    assert g.string(o, "a") == "" and g.string(None, "a") == ""
    assert g.strings(o, "a") is None and g.strings(None, "a") is None
    assert g.objects(o, "a") == [] and g.string_map(o, "a") == {}
    assert g.obj(o, "a") is None and g.obj(None, "a") is None
    assert g.string_map_keys(o, "a") == []


def test_integer_accepts_integral_floats_like_go():
    assert g.integer(g.decode('{"M": 1e3}'), "m") == 1000
    with pytest.raises(BodyError):
        g.integer(g.decode('{"M": true}'), "m")


def test_strslice_takes_a_bare_string():
    o = g.decode('{"CapAdd": "SYS_ADMIN", "Cmd": ["a", "b"]}')
    assert g.strings(o, "capadd", strslice=True) == ["SYS_ADMIN"]
    assert g.strings(o, "cmd", strslice=True) == ["a", "b"]
    with pytest.raises(BodyError, match="must be a list of strings"):
        g.strings(o, "capadd")


def test_objects_skip_null_elements():
    o = g.decode('{"Mounts": [null, {"Type": "bind"}]}')
    assert [g.string(m, "type") for m in g.objects(o, "mounts")] == ["bind"]


def test_string_map_keys():
    o = g.decode('{"Volumes": {"/a": {}, "/b": {}}, "X": []}')
    assert g.string_map_keys(o, "volumes") == ["/a", "/b"]
    with pytest.raises(BodyError, match="x must be an object, not a list"):
        g.string_map_keys(o, "x", "")


def test_has_and_repr():
    o = g.decode('{"A": 1}')
    assert o.has("a") and not o.has("b")
    assert "Obj" in repr(o)


# Go decodes a repeated array into the slice already there, element by element
# (golang/go#21092, its fix reverted in #39427): objects in a repeated list merge.

def test_repeated_list_of_objects_merges_element_wise():
    o = g.decode('{"Mounts":[{"Type":"bind","Source":"/etc","Target":"/x"}],"Mounts":[{"Target":"/y"}]}')
    (m,) = g.objects(o, "mounts")
    assert (g.string(m, "type"), g.string(m, "source"), g.string(m, "target")) == ("bind", "/etc", "/y")


def test_repeated_list_is_cut_to_the_new_length():
    o = g.decode('{"Mounts":[{"Source":"/a"},{"Source":"/b"}],"Mounts":[{"Target":"/y"}]}')
    assert [g.string(m, "source") for m in g.objects(o, "mounts")] == ["/a"]


def test_elements_past_the_length_come_back_from_the_backing_array():
    o = g.decode('{"M":[{"S":"/a"},{"S":"/etc"}],"M":[{"T":"1"}],"M":[{"T":"2"},{"T":"3"}]}')
    got = [(g.string(m, "s"), g.string(m, "t")) for m in g.objects(o, "m")]
    assert got == [("/a", "2"), ("/etc", "3")]


def test_null_element_keeps_the_object_there():
    o = g.decode('{"M":[{"S":"/etc"}],"M":[null]}')
    assert [g.string(m, "s") for m in g.objects(o, "m")] == ["/etc"]


def test_empty_or_null_list_starts_afresh():
    o = g.decode('{"M":[{"S":"/etc"}],"M":[],"M":[{"T":"1"}]}')
    assert [(g.string(m, "s"), g.string(m, "t")) for m in g.objects(o, "m")] == [("", "1")]
    o = g.decode('{"M":[{"S":"/etc"}],"M":null,"M":[{"T":"1"}]}')
    assert [(g.string(m, "s"), g.string(m, "t")) for m in g.objects(o, "m")] == [("", "1")]
    assert g.objects(g.decode('{"M":[{"S":"/etc"}],"M":[]}'), "m") == []


def test_repeated_string_lists_are_replaced():
    o = g.decode('{"Binds":["/etc:/x","/srv:/y"],"Binds":["/tmp:/z"]}')
    assert g.strings(o, "binds") == ["/tmp:/z"]


def test_nested_repeated_lists_inside_merged_elements():
    o = g.decode('{"S":[{"Args":[{"Op":"EQ","Value":1}]}],"S":[{"Args":[{"Value":2}]}]}')
    (s,) = g.objects(o, "s")
    (a,) = g.objects(s, "args")
    assert (g.string(a, "op"), g.integer(a, "value")) == ("EQ", 2)


# ---- pointer-to-struct fields: null sets them back to nil ----

@pytest.mark.parametrize("text,want", [
    ('{}', None),
    ('{"H": null}', None),
    ('{"H": {"A": 1}}', {"a": 1}),
    ('{"H": {"A": 1}, "H": null}', None),
    ('{"H": {"A": 1}, "h": null, "H": {"B": 2}}', {"b": 2}),
    ('{"H": {"A": 1}, "h": {"B": 2}}', {"a": 1, "b": 2}),
    ('{"H": null, "H": {"A": 1}}', {"a": 1}),
])
def test_pointer_obj(text, want):
    got = g.pointer_obj(g.decode(text), "h")
    if want is None:
        assert got is None
    else:
        assert {k: got.get(k) for k in want} == want and all(got.get(k) is None for k in "ab" if k not in want)


def test_pointer_obj_refuses_other_types_and_ambiguous_keys():
    with pytest.raises(g.BodyError, match="must be an object"):
        g.pointer_obj(g.decode('{"H": {}, "H": []}'), "h")
    with pytest.raises(g.BodyError, match="ambiguous"):
        g.pointer_obj(g.decode('{"H\u212a": {}}'), "h")
