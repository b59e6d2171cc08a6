"""The SQLite state file on disk: durability per chunk, compaction, reset, no secrets stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cohorthub.partner_client import Chunk, StateError, StateStore, Target
from cohorthub.partner_client.model import Secret

TARGET = Target("http://127.0.0.1:8000/", "heap", Secret("PK"), Secret("very-secret-import-key"))


def chunk(ids: list[str], *, remove: bool = False, namespace: str = "external_id") -> Chunk:
    result = Chunk(remove)
    result.add(namespace, ids)
    return result


def test_acknowledged_chunks_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state.sqlite"
    store = StateStore(path)
    key = store.ensure(TARGET, "c1").key
    store.record_ack(key, chunk(["u1", "u2", "u3"]))
    store.record_ack(key, chunk(["d1"], namespace="device_id"))
    store.record_ack(key, chunk(["u2"], remove=True))
    store.close()  # no compaction: the journal alone must carry the acknowledged state

    reopened = StateStore(path)
    assert reopened.previous(key).all_members() == {
        ("external_id", "u1"),
        ("external_id", "u3"),
        ("device_id", "d1"),
    }
    (row,) = reopened.cohorts()
    assert (row.endpoint, row.partner, row.cohort_id, row.adds_sent, row.removes_sent) == (
        "http://127.0.0.1:8000",
        "heap",
        "c1",
        4,
        1,
    )
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT count(*) FROM journal").fetchone() == (0,)  # previous() compacted
    raw.close()
    reopened.close()


def test_re_adding_a_removed_member_after_compaction(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    key = store.ensure(TARGET, "c1").key
    store.record_ack(key, chunk(["u1"]))
    assert store.compact(key) == 1
    store.record_ack(key, chunk(["u1"], remove=True))
    store.record_ack(key, chunk(["u1"]))
    store.record_ack(key, chunk(["u9"], remove=True))
    assert store.previous(key).all_members() == {("external_id", "u1")}
    store.record_ack(key, chunk(["u1"], remove=True))
    assert store.previous(key).all_members() == set()


def test_cohorts_are_keyed_by_endpoint_key_partner_and_cohort(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    other_key = Target(TARGET.endpoint, "heap", Secret("PK"), Secret("another"))
    other_partner = Target(TARGET.endpoint, "mixpanel", Secret("PK"), Secret("very-secret-import-key"))
    keys = {store.ensure(t, c).key for t in (TARGET, other_key, other_partner) for c in ("c1", "c2")}
    assert len(keys) == 6
    assert store.ensure(TARGET, "c1").key in keys


def test_the_data_import_key_is_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = StateStore(path)
    key = store.ensure(TARGET, "c1").key
    store.record_ack(key, chunk(["u1"]))
    store.record_failure(key, "boom")
    store.close()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"very-secret-import-key" not in data
    assert TARGET.data_import_key.fingerprint().encode() in data


def test_reset_forgets_membership_and_name(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    key = store.ensure(TARGET, "c1").key
    store.record_name(key, "Name", "2024-01-01T00:00:00+00:00")
    store.record_ack(key, chunk(["u1"]))
    assert store.reset([key]) == 1
    state = store.get(key)
    assert state is not None and state.name_sent is None
    assert store.previous(key).all_members() == set()


def test_unusable_state_files_raise_state_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="cannot open state file"):
        StateStore(garbage)
    newer = tmp_path / "newer.sqlite"
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StateError, match="newer than this client"):
        StateStore(newer)


def test_a_transaction_cut_short_by_an_interrupt_does_not_block_the_next(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    key = store.ensure(TARGET, "c1").key
    store._conn.execute("BEGIN IMMEDIATE")  # as Ctrl-C inside COMMIT or ROLLBACK leaves the connection
    store.record_failure(key, "KeyboardInterrupt")  # was: StateError, "within a transaction"
    store.close()
    (cohort,) = StateStore(tmp_path / "state.sqlite").cohorts()
    assert (cohort.failures, cohort.last_error) == (1, "KeyboardInterrupt")
