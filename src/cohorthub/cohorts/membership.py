"""Cohort membership as roaring bitmaps of `users.num`, and the in-process cache.

The persisted set is a snapshot of 2**16-wide chunks at `snapshot_version` plus the change
log. `MembershipCache` keeps each cohort's set keyed by (cohort pk, version) and catches up
by reading only log rows newer than the version it holds, so processes sharing one database
see each other's writes. Cached bitmaps are never mutated: a write makes a new one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from pyroaring import AbstractBitMap, BitMap

from cohorthub.cohorts.model import Cohort
from cohorthub.cohorts.ports import LoggedChange, MembershipLog

CHUNK_BITS = 16


@dataclass(frozen=True, slots=True)
class Membership:
    """A cohort's members at `version`, and the log tail since `snapshot_version`."""

    version: int
    snapshot_version: int
    bitmap: BitMap
    tail: int = 0  # logged changes newer than the snapshot
    touched: frozenset[int] = frozenset()  # chunk numbers those changes fall in

    def apply(self, *, version: int, entered: AbstractBitMap, left: AbstractBitMap) -> Membership:
        """The membership after one write of `version`."""
        bitmap = (self.bitmap | entered) - left
        touched = self.touched | _chunks(entered) | _chunks(left)
        tail = self.tail + len(entered) + len(left)
        return replace(self, version=version, bitmap=bitmap, tail=tail, touched=frozenset(touched))

    def compacted(self) -> Membership:
        """The same set, with the snapshot moved to its version."""
        return replace(self, snapshot_version=self.version, tail=0, touched=frozenset())


def _chunks(bitmap: AbstractBitMap) -> set[int]:
    if not bitmap:
        return set()
    first, last = bitmap.min() >> CHUNK_BITS, bitmap.max() >> CHUNK_BITS
    if first == last:
        return {first}
    return {n >> CHUNK_BITS for n in bitmap}


def chunk_images(bitmap: AbstractBitMap, chunk_nos: Iterable[int]) -> dict[int, bytes | None]:
    """The serialized part of `bitmap` in each chunk (None for an empty chunk)."""
    images: dict[int, bytes | None] = {}
    for no in chunk_nos:
        part = bitmap & BitMap(range(no << CHUNK_BITS, (no + 1) << CHUNK_BITS))
        images[no] = part.serialize() if part else None
    return images


def replay(bitmap: BitMap, changes: list[LoggedChange], *, after_snapshot: int) -> tuple[int, set[int]]:
    """Apply logged changes in order to `bitmap`; return the tail and chunks newer than the snapshot."""
    tail, touched = 0, set()
    for version, num, entered in changes:
        if entered:
            bitmap.add(num)
        else:
            bitmap.discard(num)
        if version > after_snapshot:
            tail += 1
            touched.add(num >> CHUNK_BITS)
    return tail, touched


def load_membership(log: MembershipLog, cohort: Cohort) -> Membership:
    """Read a cohort's set from its snapshot and the log rows after it."""
    bitmap = BitMap()
    for _no, image in log.load_chunks(cohort.pk):
        bitmap |= BitMap.deserialize(image)
    changes = log.changes_after(cohort.pk, after_version=cohort.snapshot_version, upto_version=cohort.version)
    tail, touched = replay(bitmap, changes, after_snapshot=cohort.snapshot_version)
    return Membership(cohort.version, cohort.snapshot_version, bitmap, tail, frozenset(touched))


def catch_up(log: MembershipLog, cohort: Cohort, held: Membership) -> Membership:
    """`held` brought forward to `cohort.version` by reading only the newer log rows."""
    changes = log.changes_after(cohort.pk, after_version=held.version, upto_version=cohort.version)
    bitmap = held.bitmap.copy()
    tail, touched = replay(bitmap, changes, after_snapshot=cohort.snapshot_version)
    if cohort.snapshot_version == held.snapshot_version:
        tail, touched = held.tail + tail, touched | held.touched
    return Membership(cohort.version, cohort.snapshot_version, bitmap, tail, frozenset(touched))


class MembershipCache:
    """Each cohort's current member set, keyed by (cohort pk, version); least recently used go first."""

    def __init__(self, max_cohorts: int = 4096) -> None:
        self._max = max_cohorts
        self._entries: OrderedDict[int, Membership] = OrderedDict()
        self._lock = threading.Lock()

    def current(self, log: MembershipLog, cohort: Cohort) -> Membership:
        """The cohort's membership at `cohort.version`, reading only what the cache lacks."""
        with self._lock:
            held = self._entries.get(cohort.pk)
            if held is not None:
                self._entries.move_to_end(cohort.pk)
        if held is not None and held.version == cohort.version:
            return held
        if held is not None and held.version < cohort.version:
            fresh = catch_up(log, cohort, held)
        else:
            fresh = load_membership(log, cohort)
        self.put(cohort.pk, fresh)
        return fresh

    def held(self, cohort_pk: int) -> Membership | None:
        """The newest committed membership held for a cohort, without reading storage (or None)."""
        with self._lock:
            return self._entries.get(cohort_pk)

    def put(self, cohort_pk: int, membership: Membership) -> None:
        """Remember a committed membership unless a newer one is already held."""
        with self._lock:
            held = self._entries.get(cohort_pk)
            if held is not None and held.version > membership.version:
                return
            self._entries[cohort_pk] = membership
            self._entries.move_to_end(cohort_pk)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        """Cohorts held."""
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        """Drop every entry (a write transaction whose reads some entries caught up to did not commit)."""
        with self._lock:
            self._entries.clear()

    def forget(self, cohort_pk: int) -> None:
        """Drop a cohort's entry (its next read loads it again)."""
        with self._lock:
            self._entries.pop(cohort_pk, None)
