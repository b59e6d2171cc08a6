"""The membership cache against an in-memory log: it reads only what it lacks."""

from __future__ import annotations

import dataclasses

from pyroaring import BitMap

from cohorthub.cohorts.membership import CHUNK_BITS, Membership, MembershipCache, chunk_images
from cohorthub.cohorts.model import Cohort
from cohorthub.cohorts.ports import LoggedChange


class MemoryLog:
    """Chunks and log rows in memory, recording which versions were asked for."""

    def __init__(self) -> None:
        self.chunks: dict[int, bytes] = {}
        self.rows: list[LoggedChange] = []
        self.reads: list[tuple[int, int]] = []

    def load_chunks(self, cohort_pk: int) -> list[tuple[int, bytes]]:
        return sorted(self.chunks.items())

    def changes_after(self, cohort_pk: int, *, after_version: int, upto_version: int) -> list[LoggedChange]:
        self.reads.append((after_version, upto_version))
        return [r for r in self.rows if after_version < r[0] <= upto_version]


def _cohort(version: int, snapshot_version: int = 0) -> Cohort:
    return Cohort(
        pk=1, workspace_id="w", partner="heap", cohort_id="c", name="c", named=True, partner_created_at=None,
        created_at=0, updated_at=0, version=version, size=0, snapshot_version=snapshot_version,
        last_import_at=None, import_requests=0, identifiers_matched=0, identifiers_unmatched=0,
        unmatched_sample=[],
    )  # fmt: skip


def test_catch_up_reads_only_newer_rows() -> None:
    log, cache = MemoryLog(), MembershipCache()
    log.rows = [(1, 10, True), (1, 11, True)]
    assert set(cache.current(log, _cohort(1)).bitmap) == {10, 11}
    log.rows += [(2, 10, False), (3, 12, True)]
    held = cache.current(log, _cohort(3))
    assert set(held.bitmap) == {11, 12}
    assert log.reads == [(0, 1), (1, 3)]
    assert cache.current(log, _cohort(3)) is held, "the same version reads nothing"
    assert (held.tail, held.touched) == (4, frozenset({0}))


def test_a_newer_held_version_is_not_replaced_by_an_older_read() -> None:
    log, cache = MemoryLog(), MembershipCache()
    newer = Membership(version=5, snapshot_version=0, bitmap=BitMap([1]))
    cache.put(1, newer)
    log.rows = [(1, 2, True)]
    assert set(cache.current(log, _cohort(1)).bitmap) == {2}
    assert cache.current(log, _cohort(5)) is newer


def test_apply_tracks_touched_chunks_and_compaction_images_only_those() -> None:
    far = (3 << CHUNK_BITS) + 5
    before = Membership(version=1, snapshot_version=1, bitmap=BitMap([1, 2]))
    after = before.apply(version=2, entered=BitMap([far]), left=BitMap([2]))
    assert (set(after.bitmap), after.tail, after.touched) == ({1, far}, 2, frozenset({0, 3}))
    assert set(before.bitmap) == {1, 2}, "the cached set is never changed in place"
    images = chunk_images(after.bitmap, after.touched)
    assert {no: set(BitMap.deserialize(b)) for no, b in images.items() if b} == {0: {1}, 3: {far}}
    emptied = chunk_images(BitMap([1]), [3])
    assert emptied == {3: None}
    assert after.compacted() == dataclasses.replace(after, snapshot_version=2, tail=0, touched=frozenset())


def test_a_snapshot_written_elsewhere_resets_the_tail() -> None:
    log, cache = MemoryLog(), MembershipCache()
    log.rows = [(1, 1, True)]
    cache.current(log, _cohort(1))
    log.chunks = {0: BitMap([1, 2]).serialize()}
    log.rows += [(2, 2, True), (3, 3, True)]
    held = cache.current(log, _cohort(3, snapshot_version=2))
    assert (set(held.bitmap), held.tail, held.snapshot_version) == ({1, 2, 3}, 1, 2)


def test_least_recently_used_cohorts_are_dropped() -> None:
    cache = MembershipCache(max_cohorts=1)
    cache.put(1, Membership(1, 0, BitMap([1])))
    cache.put(2, Membership(1, 0, BitMap([2])))
    log = MemoryLog()
    log.rows = [(1, 9, True)]
    assert set(cache.current(log, _cohort(1)).bitmap) == {9}
