from __future__ import annotations

import io
from collections.abc import Collection, Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from cohorthub.partner_client.diff import (
    BucketKey,
    EmptyMembership,
    Spill,
    bucket_of,
    diff_bucket,
    diff_membership,
)


class DictMembership:
    """Previous membership from a plain set, bucketed like the state file."""

    def __init__(self, members: Iterable[tuple[str, str]]) -> None:
        self._buckets: dict[BucketKey, list[bytes]] = {}
        for ns, ident in members:
            raw = ident.encode()
            self._buckets.setdefault((ns, bucket_of(raw)), []).append(raw)

    def keys(self) -> Iterable[BucketKey]:
        return self._buckets.keys()

    def members(self, namespace: str, bucket: int) -> Collection[bytes]:
        return self._buckets.get((namespace, bucket), [])


def _batches(members: Iterable[tuple[str, str]]) -> list[tuple[str, list[bytes]]]:
    return [(ns, [ident.encode()]) for ns, ident in members]


def _changes(
    current: set[tuple[str, str]], previous: set[tuple[str, str]]
) -> tuple[set[object], set[object]]:
    result = diff_membership(_batches(sorted(current)), DictMembership(previous), spill_factory=_memory_spill)
    adds = {(ns, i) for ns, ids in result.groups(should_remove=False) for i in ids}
    removes = {(ns, i) for ns, ids in result.groups(should_remove=True) for i in ids}
    assert (result.adds, result.removes, result.members) == (len(adds), len(removes), len(current))
    return adds, removes


def _memory_spill() -> Spill:
    return Spill(io.BytesIO())


def test_bucket_diff_dedupes_the_current_side() -> None:
    adds, removes, members = diff_bucket([b"a", b"b", b"b", b"c"], [b"b", b"d"])
    assert (sorted(adds), removes, members) == ([b"a", b"c"], [b"d"], 3)


def test_first_sync_adds_everyone_once() -> None:
    batches = [("external_id", [b"u1", b"u2", b"u1"]), ("device_id", [b"u1"])]
    result = diff_membership(batches, EmptyMembership())
    assert (result.adds, result.removes, result.members) == (3, 0, 3)
    assert result.by_namespace == {"external_id": (2, 0), "device_id": (1, 0)}
    assert sorted(result.sample_adds) == ["device_id=u1", "u1", "u2"]


def test_same_identifier_in_two_namespaces_is_two_members() -> None:
    adds, removes = _changes({("external_id", "x"), ("alias:email", "x")}, {("external_id", "x")})
    assert (adds, removes) == ({("alias:email", "x")}, set())


def test_unchanged_membership_has_no_changes() -> None:
    members = {("external_id", f"u{i}") for i in range(5000)}
    assert _changes(members, members) == (set(), set())


def test_spill_keeps_segments_apart_and_in_order() -> None:
    spill = _memory_spill()
    spill.write("a", [b"1", b"2"])
    spill.write("b", [b"x"])
    spill.write("a", [b"3"])
    spill.write("c", [])
    assert spill.read("a") == [b"1", b"2", b"3"]
    assert spill.read("b") == [b"x"]
    assert spill.written_keys() == ["a", "b"]
    spill.write("b", [b"y"])  # a write after reads appends at the end, not where the read stopped
    assert spill.read("a") == [b"1", b"2", b"3"]
    assert spill.read("b") == [b"x", b"y"]


identifiers = st.sets(
    st.tuples(
        st.sampled_from(["external_id", "device_id", "alias:email"]),
        st.text(
            st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), min_size=1, max_size=12
        ),
    ),
    max_size=60,
)


@settings(max_examples=150)
@given(identifiers, identifiers)
def test_diff_matches_set_difference(current: set[tuple[str, str]], previous: set[tuple[str, str]]) -> None:
    current = {(ns, i) for ns, i in current if i.strip() == i}
    assert _changes(current, previous) == (current - previous, previous - current)
