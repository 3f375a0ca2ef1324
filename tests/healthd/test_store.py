"""Atomic per-container state files; corrupt files set aside, not trusted."""
import json
import os

import pytest

from healthd.machine import Health, Result
from healthd.store import (Store, StoreError, health_from_json, health_to_json,
                           parse_rfc3339, read_all, rfc3339)

CID = "a" * 64


def record(h):
    return {"Id": CID, "Name": "web", "Health": health_to_json(h)}


def test_roundtrip(tmp_path):
    st = Store(tmp_path).open()
    h = Health("unhealthy", 3, (Result(1700000000.25, 1700000000.5, 1, "no"),))
    st.write(CID, record(h))
    got = st.load(CID)
    assert got["Health"] == {"Status": "unhealthy", "FailingStreak": 3, "Log": [
        {"Start": "2023-11-14T22:13:20.250000Z", "End": "2023-11-14T22:13:20.500000Z",
         "ExitCode": 1, "Output": "no"}]}
    assert health_from_json(got["Health"]) == h
    assert [r["Id"] for r in read_all(tmp_path)] == [CID]


def test_rfc3339_docker_nanoseconds():
    assert parse_rfc3339("2023-11-14T22:13:20.123456789Z") == pytest.approx(1700000000.123456789)
    assert parse_rfc3339("2023-11-14T23:13:20+01:00") == 1700000000.0
    assert parse_rfc3339(rfc3339(1700000000.5)) == 1700000000.5


@pytest.mark.parametrize("content", [b"{torn", b"", b"[]", b'{"Id": "other"}',
                                     json.dumps({"Id": CID, "Health": {"Status": "odd"}}).encode()])
def test_corrupt_file_set_aside(tmp_path, content, caplog):
    st = Store(tmp_path).open()
    (tmp_path / f"{CID}.json").write_bytes(content)
    assert st.load(CID) is None
    assert not (tmp_path / f"{CID}.json").exists()
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == content
    assert "corrupt" in caplog.text


def test_one_sidecar_per_state_dir(tmp_path):
    a = Store(tmp_path).open()
    with pytest.raises(StoreError, match="another healthd"):
        Store(tmp_path).open()
    a.close()
    Store(tmp_path).open().close()


def test_unusable_state_dir_is_a_clear_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StoreError, match="cannot use state dir"):
        Store(f / "sub").open()


def test_write_is_atomic_swap(tmp_path, monkeypatch):
    import healthd.store as store
    st = Store(tmp_path).open()
    st.write(CID, record(Health()))                  # first write: a rename
    st.write(CID, record(Health("healthy", 0, ())))  # then swaps with the spare
    before = (tmp_path / f"{CID}.json").read_bytes()
    assert json.loads(before)["Health"]["Status"] == "healthy"

    def crash(*a):
        raise OSError("simulated crash before the swap")
    monkeypatch.setattr(store, "_exchange", crash)
    with pytest.raises(OSError):
        st.write(CID, record(Health("unhealthy", 3, ())))
    assert (tmp_path / f"{CID}.json").read_bytes() == before
    monkeypatch.undo()
    st.write(CID, record(Health("unhealthy", 3, ())))
    assert st.load(CID)["Health"]["Status"] == "unhealthy"
    assert [r["Id"] for r in read_all(tmp_path)] == [CID]   # the spare is not a record
    st.delete(CID)
    assert not [p for p in tmp_path.iterdir() if CID in p.name]


def test_rejects_non_ids(tmp_path):
    st = Store(tmp_path).open()
    with pytest.raises(ValueError):
        st.path("../etc/passwd")
