"""Maintained in-memory indexes the engine reads: per workspace, the universe of user
numbers, one bitmap per leaf in use and one per cohort, caught up before each evaluation.

Catch-up (docs/segments.md "Indexes and freshness") reads only what changed since the last look,
in one statement (`SegmentFacts.changes`): users whose change stamp (`users.change_id`) is past a
watermark, event and purchase rows and deletion tombstones past theirs, the versions of the cohort
leaves, the stored definitions asked for, and the facts of the changed users. On PostgreSQL values
still missing below a watermark are re-read until the snapshot shows that no writer can fill them
(`IdWatermark`); on SQLite there are none. A read costs what changed since the previous one,
whatever the write rate. The users found are re-evaluated against every cached leaf; re-applying a
change is harmless. A leaf is built by one narrow query
(`SegmentFacts.leaf_rows`); a relative-time leaf then slides with the clock through its
`windows.Timeline`, re-evaluating only the users whose window edge the new minute crossed.
Cohort leaves come from the cohort membership cache, at the probed version or newer.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pyroaring import BitMap

from cohorthub.segments.engine import evaluate
from cohorthub.segments.model import (
    CohortLeaf,
    EventLeaf,
    Leaf,
    Node,
    referenced_cohorts,
    standard_facts,
    uses_custom,
    uses_sessions,
)
from cohorthub.segments.ports import SOURCES, Changes, FactsWanted, SegmentFacts, SegmentRecord
from cohorthub.segments.reference import UserFacts, leaf_matches
from cohorthub.segments.windows import Timeline, leaf_cutoff, next_moment

_BATCH = 500
_MAX_GAPS = 10_000
_MAX_SLIDE = 100_000
_SETTLE = 0.5
_MAX_DEFINITIONS = 4096


class IdWatermark:
    """Increasing ids seen so far: everything up to `high`, except gaps a writer may still fill.

    Where ids become visible in id order (`snapshot` None: SQLite's single writer) an id missing
    below `high` is never filled, so there are no gaps. On PostgreSQL a sequence value is taken
    before its transaction commits, by a transaction that started before the probe that finds
    the hole. Once the hole is `_SETTLE` seconds old (the writer has had its transaction id by
    then: it takes one with its first row), a probe notes its snapshot's `xmax`; a later probe
    whose snapshot `xmin` has passed that value runs after every transaction that could fill the
    hole has ended, and having read it, drops it. A hole is dropped after `margin` seconds at the
    latest (a transaction that stays open longer than that is not waited for).
    """

    def __init__(self, high: int, *, margin: float) -> None:
        self.high = high
        self.margin = margin
        self.gaps: dict[int, tuple[float, int | None]] = {}  # id -> (first missed at, xmax to pass)

    def observe(self, ids: Iterable[int], *, now: float, snapshot: tuple[int, int] | None = None) -> None:
        """Record ids just read by a probe with `snapshot` (xmin, xmax); remember the holes below them."""
        for id_ in sorted(set(ids)):
            self.gaps.pop(id_, None)
            if id_ > self.high:
                if snapshot is not None and id_ - self.high <= _MAX_GAPS:
                    self.gaps.update(dict.fromkeys(range(self.high + 1, id_), (now, None)))
                self.high = id_
        if snapshot is None:
            self.gaps.clear()
            return
        xmin, xmax = snapshot
        kept: dict[int, tuple[float, int | None]] = {}
        for id_, (at, wait_for) in self.gaps.items():
            if now - at >= self.margin or (wait_for is not None and xmin >= wait_for):
                continue
            kept[id_] = (at, xmax if wait_for is None and now - at >= _SETTLE else wait_for)
        self.gaps = kept


@dataclass(frozen=True, slots=True)
class KnownSegment:
    """A segment's definition as parsed at its last evaluation, and what storage held then.

    `stored`: the filter and `updated_at` of the segment and of every segment it uses; an evaluation
    reads the stored ones again in its probe and uses this definition only while they are the same.
    """

    record: SegmentRecord
    node: Node
    definitions: Mapping[str, Node]
    stored: Mapping[str, tuple[Any, float]]


@dataclass(slots=True)
class _Cached:
    """One leaf's members, and for a relative-time leaf the moments its window will pass."""

    bitmap: BitMap
    timeline: Timeline | None = None


class WorkspaceIndex:
    """The universe, leaf and cohort bitmaps of one workspace."""

    def __init__(
        self, workspace_id: str, *, margin: float, max_leaves: int, clock: Callable[[], float]
    ) -> None:
        self.workspace_id = workspace_id
        self.margin = margin
        self.max_leaves = max_leaves
        self.clock = clock
        self.lock = threading.Lock()
        self.ready = False
        self.universe_bm = BitMap()
        self.leaves: OrderedDict[Leaf, _Cached] = OrderedDict()
        self.marks = {source: IdWatermark(0, margin=margin) for source in SOURCES}

    def refresh(
        self,
        facts: SegmentFacts,
        *,
        now: float,
        cohorts: Collection[tuple[str, str]] = (),
        segments: Collection[str] = (),
    ) -> Changes:
        """Load on first use, then apply every change since the last refresh: one probe.

        The probe also reads (pk, version) of each of `cohorts` and the stored definition of each of
        `segments`; it is returned.
        """
        if not self.ready:
            self._warm(facts)
        return self._catch_up(facts, now=now, cohorts=cohorts, segments=segments)

    def _warm(self, facts: SegmentFacts) -> None:
        marks = facts.marks(self.workspace_id)  # before reading, so later changes are caught up
        self.universe_bm = facts.universe(self.workspace_id)
        self.marks["users"].high = marks.change_id
        self.marks["events"].high, self.marks["purchases"].high = marks.event_id, marks.purchase_id
        self.marks["deletions"].high = marks.deletion_id
        self.ready = True

    def _catch_up(
        self,
        facts: SegmentFacts,
        *,
        now: float,
        cohorts: Collection[tuple[str, str]],
        segments: Collection[str],
    ) -> Changes:
        tick = self.clock()
        leaves = list(self.leaves.items())
        after = {k: (m.high, m.gaps.keys()) for k, m in self.marks.items()}
        found = facts.changes(self.workspace_id, after, cohorts, _wanted(leaves), segments)
        for source, mark in self.marks.items():
            mark.observe((id_ for id_, _ in found.rows[source]), now=tick, snapshot=found.snapshot)
        gone = BitMap(num for _, num in found.rows["deletions"] if num is not None)
        if gone:
            self.universe_bm -= gone
            for cached in self.leaves.values():
                cached.bitmap -= gone
        written = ("users", "events", "purchases")
        dirty = BitMap(num for source in written for _, num in found.rows[source] if num is not None)
        if dirty := dirty - gone:
            covered = BitMap(found.covered)
            users = [u for u in found.facts if u.num not in gone]
            self._apply(users, dirty & covered, leaves, now=now, changed=True)
            if rest := dirty - covered:  # more changed users than the probe reads facts of
                self._recompute(facts, list(rest), leaves, now=now, changed=True)
        return found

    def _recompute(
        self,
        facts: SegmentFacts,
        nums: list[int],
        leaves: list[tuple[Leaf, _Cached]],
        *,
        now: float,
        changed: bool,
    ) -> None:
        """Re-evaluate `leaves` for the given users; `changed`: their data changed (else only time passed)."""
        wanted = _wanted(leaves)
        for start in range(0, len(nums), _BATCH):
            batch = nums[start : start + _BATCH]
            users = facts.user_facts(
                self.workspace_id,
                batch,
                events=set(wanted.events),
                purchases=wanted.purchases,
                sessions=wanted.sessions,
            )
            self._apply(users, BitMap(batch), leaves, now=now, changed=changed)

    def _apply(
        self,
        users: list[UserFacts],
        batch: BitMap,
        leaves: list[tuple[Leaf, _Cached]],
        *,
        now: float,
        changed: bool,
    ) -> None:
        """Re-evaluate `leaves` for the users of `batch`, given the facts of those still in the workspace."""
        present = BitMap(u.num for u in users)
        missing = batch - present
        if changed:
            self.universe_bm |= present
            self.universe_bm -= missing
        else:  # a user not caught up yet is left to the catch-up that will see it
            users = [u for u in users if u.num in self.universe_bm]
        for leaf, cached in leaves:
            cached.bitmap -= missing
            cutoff = leaf_cutoff(leaf, now)
            for user in users:
                if leaf_matches(leaf, user, now=now):
                    cached.bitmap.add(user.num)
                else:
                    cached.bitmap.discard(user.num)
                if cached.timeline is not None and cutoff is not None:
                    cached.timeline.add(next_moment(leaf, user, cutoff=cutoff), user.num)

    def universe(self) -> BitMap:
        """Every user number of the workspace."""
        return self.universe_bm

    def leaf_bitmap(self, facts: SegmentFacts, leaf: Leaf, *, now: float) -> BitMap:
        """The members of one leaf (a cached bitmap: do not change it)."""
        assert not isinstance(leaf, CohortLeaf), "cohort leaves come from the cohort membership cache"
        cached = self.leaves.get(leaf)
        if cached is not None:
            self.leaves.move_to_end(leaf)
            if cached.timeline is not None and not self._slide(facts, leaf, cached, now=now):
                cached = None
        if cached is None:
            cached = self._build(facts, leaf, now=now)
            self.leaves[leaf] = cached
            while len(self.leaves) > self.max_leaves:
                self.leaves.popitem(last=False)
        return cached.bitmap

    def _slide(self, facts: SegmentFacts, leaf: Leaf, cached: _Cached, *, now: float) -> bool:
        """Move a relative-time leaf to the cutoff of `now`; False when it must be rebuilt instead."""
        assert cached.timeline is not None
        cutoff = leaf_cutoff(leaf, now)
        assert cutoff is not None
        if cutoff == cached.timeline.cutoff:
            return True
        if cutoff < cached.timeline.cutoff:  # the clock went back
            return False
        due = cached.timeline.advance(cutoff)
        if len(due) > _MAX_SLIDE:  # a long pause: one narrow query beats many small reads
            return False
        if due:
            self._recompute(facts, sorted(due), [(leaf, cached)], now=now, changed=False)
        return True

    def _build(self, facts: SegmentFacts, leaf: Leaf, *, now: float) -> _Cached:
        rows = facts.leaf_rows(self.workspace_id, leaf, now=now)
        bitmap = self.universe_bm - rows.nums if rows.complement else rows.nums & self.universe_bm
        cutoff = leaf_cutoff(leaf, now)
        return _Cached(bitmap, Timeline(cutoff, rows.moments) if cutoff is not None else None)


#: A cohort's members from (partner, cohort_id, (pk, version) as the probe read it, None: no such cohort).
#: The bitmap is only read, never changed.
def _wanted(leaves: list[tuple[Leaf, _Cached]]) -> FactsWanted:
    """The facts of a changed user that re-evaluating `leaves` needs (the catch-up probe reads no more:
    its cost follows the number of changed users, each one's row as narrow as the leaves allow)."""
    return FactsWanted(
        standard=frozenset(name for k, _ in leaves for name in standard_facts(k)),
        custom=any(uses_custom(k) for k, _ in leaves),
        events=frozenset(
            k.name for k, _ in leaves if isinstance(k, EventLeaf) and k.kind == "event" and k.name
        ),
        purchases=any(isinstance(k, EventLeaf) and k.kind == "purchase" for k, _ in leaves),
        sessions=any(uses_sessions(k) for k, _ in leaves),
    )


CohortMembers = Callable[[str, str, tuple[int, int] | None], BitMap]


class _Source:
    def __init__(
        self,
        index: WorkspaceIndex,
        facts: SegmentFacts,
        cohorts: CohortMembers,
        states: Mapping[tuple[str, str], tuple[int, int]],
        now: float,
    ) -> None:
        self.index, self.facts, self.cohorts, self.states, self.now = index, facts, cohorts, states, now

    def universe(self) -> BitMap:
        return self.index.universe()

    def leaf(self, leaf: Leaf) -> BitMap:
        if isinstance(leaf, CohortLeaf):
            key = (leaf.partner, leaf.cohort_id)
            members = self.cohorts(leaf.partner, leaf.cohort_id, self.states.get(key))
            return members if leaf.op == "includes" else self.index.universe_bm - members
        return self.index.leaf_bitmap(self.facts, leaf, now=self.now)


class SegmentIndexes:
    """Every workspace's index, held once per process by the composition root."""

    def __init__(
        self, *, margin: float = 30.0, max_leaves: int = 256, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.margin = margin
        self.max_leaves = max_leaves
        self.clock = clock
        self._lock = threading.Lock()
        self._workspaces: dict[str, WorkspaceIndex] = {}
        self._history: dict[int, tuple[float, int, float]] = {}  # pk -> (at, size, snapshot at)
        self._definitions: OrderedDict[tuple[str, str], KnownSegment] = OrderedDict()

    def workspace(self, workspace_id: str) -> WorkspaceIndex:
        """The index of one workspace (created empty on first use)."""
        with self._lock:
            if workspace_id not in self._workspaces:
                self._workspaces[workspace_id] = WorkspaceIndex(
                    workspace_id, margin=self.margin, max_leaves=self.max_leaves, clock=self.clock
                )
            return self._workspaces[workspace_id]

    def evaluate(
        self,
        facts: SegmentFacts,
        *,
        cohorts: CohortMembers,
        workspace_id: str,
        node: Node,
        definitions: Mapping[str, Node],
        now: float,
        segments: Collection[str] = (),
    ) -> tuple[BitMap, Mapping[str, tuple[str, float]]]:
        """The members of `node` after catching up with every committed change, and the stored
        (filter text, updated_at) of `segments`, read by the same probe."""
        index = self.workspace(workspace_id)
        wanted = referenced_cohorts(node).union(*(referenced_cohorts(d) for d in definitions.values()))
        with index.lock:
            found = index.refresh(facts, now=now, cohorts=sorted(wanted), segments=segments)
            source = _Source(index, facts, cohorts, found.cohorts, now)
            return evaluate(node, source=source, definitions=definitions), found.segments

    def known_definition(self, workspace_id: str, segment_id: str) -> KnownSegment | None:
        """The definition `remember_definition` last kept for a segment."""
        with self._lock:
            return self._definitions.get((workspace_id, segment_id))

    def remember_definition(self, workspace_id: str, segment_id: str, value: KnownSegment | None) -> None:
        """Keep (or with None forget) a segment's parsed definition, for the next evaluation to check."""
        with self._lock:
            if value is None:
                self._definitions.pop((workspace_id, segment_id), None)
                return
            self._definitions[(workspace_id, segment_id)] = value
            self._definitions.move_to_end((workspace_id, segment_id))
            while len(self._definitions) > _MAX_DEFINITIONS:
                self._definitions.popitem(last=False)

    def history_due(self, segment_pk: int, size: int, *, now: float, every: float = 60.0) -> bool | None:
        """None: nothing to record; False: a size point; True: a size point and a snapshot.

        A point when the size changed or `every` seconds passed; a snapshot at most every `every`.
        """
        with self._lock:
            last = self._history.get(segment_pk)
            if last is not None and last[1] == size and now - last[0] < every:
                return None
            snapshot = last is None or now - last[2] >= every
            self._history[segment_pk] = (now, size, now if snapshot or last is None else last[2])
            return snapshot
