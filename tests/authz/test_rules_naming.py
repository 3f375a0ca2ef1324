"""name-shadows-id: names equal to, or a hex prefix of, an existing container ID."""
from __future__ import annotations

import pytest

from authz.rules.naming import shadowed_ids

from .helpers import allowed, create, decide, denied_by

ID = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b"
OTHER = "aaaa" + "0" * 60
IDS = [ID, OTHER]


def test_name_equal_to_a_full_id():
    msg = denied_by(create(name=ID, container_ids=IDS), "name-shadows-id")
    assert f"name {ID!r} equals the ID of container {ID[:12]}" in msg


@pytest.mark.parametrize("name", [ID[:12], ID[:6], ID[:1], "/" + ID[:12]])
def test_name_that_is_a_hex_prefix(name):
    msg = denied_by(create(name=name, container_ids=IDS), "name-shadows-id")
    assert f"name {name!r} is a prefix of the ID of container {ID[:12]}" in msg


@pytest.mark.parametrize("name", ["web", "cafex", "4f3c-web", "deadbeefz", "4F3C2B1A"])
def test_non_hex_names_are_never_looked_up(name):
    out = create(name=name, container_ids=IDS, fail={"container_ids"})
    allowed(out)
    assert ("container_ids",) not in out.ctx.calls


def test_hex_name_no_clash():
    out = create(name="cafe", container_ids=IDS)
    allowed(out)
    assert out.ctx.calls.count(("container_ids",)) == 1


def test_no_name_is_fine():
    allowed(create(container_ids=IDS, fail={"container_ids"}))


def test_rename():
    msg = denied_by(decide("POST", f"/containers/web/rename?name={ID[:6]}", container_ids=IDS), "name-shadows-id")
    assert "is a prefix of" in msg
    allowed(decide("POST", "/containers/web/rename?name=web2", container_ids=IDS))
    # first value wins, as in Go
    denied_by(decide("POST", f"/containers/web/rename?name={ID[:8]}&name=web2", container_ids=IDS), "name-shadows-id")


def test_shadowed_ids():
    assert shadowed_ids("aaaa", IDS) == [OTHER]
    assert shadowed_ids("/aaaa", IDS) == [OTHER]
    assert shadowed_ids("", IDS) == []
    assert shadowed_ids("zz", IDS) == []
