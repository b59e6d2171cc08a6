"""Maintained in-memory indexes the engine reads: per workspace, the universe of user
numbers, one bitmap per leaf in use and one per cohort, caught up before each evaluation.

Catch-up (docs/segments.md "Freshness") reads only what changed since the last look: users
whose change stamp (`users.change_id`, set by trigger on every write) is past a watermark, and
event and purchase rows and deletion tombstones past theirs; values still missing below a
watermark are re-read for a safety margin, as a later-committing writer may fill them. A read
costs what changed since the previous one, whatever the write rate. The users found are
re-evaluated against every cached leaf; re-applying a change is harmless. A leaf is built by one narrow query
(`SegmentFacts.leaf_rows`); a relative-time leaf then slides with the clock through its
`windows.Timeline`, re-evaluating only the users whose window edge the new minute crossed.
Cohort leaves come from the cohort membership cache (`cohorts.services.cohort_bitmap`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pyroaring import BitMap

from cohorthub.segments.engine import evaluate
from cohorthub.segments.model import CohortLeaf, EventLeaf, Leaf, Node, uses_sessions
from cohorthub.segments.ports import SegmentFacts
from cohorthub.segments.reference import leaf_matches
from cohorthub.segments.windows import Timeline, leaf_cutoff, next_moment

_BATCH = 500
_MAX_GAPS = 10_000
_MAX_SLIDE = 100_000


class IdWatermark:
    """Autoincrement ids seen so far: everything up to `high`, except gaps still young."""

    def __init__(self, high: int, *, margin: float) -> None:
        self.high = high
        self.margin = margin
        self.gaps: dict[int, float] = {}

    def observe(self, ids: Iterable[int], *, now: float) -> None:
        """Record ids just read; remember the holes below them for `margin` seconds."""
        for id_ in sorted(set(ids)):
            self.gaps.pop(id_, None)
            if id_ > self.high:
                if id_ - self.high <= _MAX_GAPS:
                    self.gaps.update(dict.fromkeys(range(self.high + 1, id_), now))
                self.high = id_
        self.gaps = {k: v for k, v in self.gaps.items() if now - v < self.margin}


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
        self.changes = IdWatermark(0, margin=margin)
        self.events = IdWatermark(0, margin=margin)
        self.purchases = IdWatermark(0, margin=margin)
        self.deletions = IdWatermark(0, margin=margin)

    def refresh(self, facts: SegmentFacts, *, now: float) -> None:
        """Load on first use, else apply every change since the last refresh."""
        if not self.ready:
            self._warm(facts)
        else:
            self._catch_up(facts, now=now)

    def _warm(self, facts: SegmentFacts) -> None:
        marks = facts.marks(self.workspace_id)  # before reading, so later changes are caught up
        self.universe_bm = facts.universe(self.workspace_id)
        self.changes.high = marks.change_id
        self.events.high, self.purchases.high = marks.event_id, marks.purchase_id
        self.deletions.high = marks.deletion_id
        self.ready = True

    def _catch_up(self, facts: SegmentFacts, *, now: float) -> None:
        ws, tick = self.workspace_id, self.clock()
        dirty: set[int] = set()
        for source, mark in (("users", self.changes), ("events", self.events), ("purchases", self.purchases)):
            found = facts.rows_after(source, ws, mark.high, mark.gaps)
            mark.observe((id_ for id_, _ in found), now=tick)
            dirty.update(num for _, num in found if num is not None)
        gone_rows = facts.rows_after("deletions", ws, self.deletions.high, self.deletions.gaps)
        self.deletions.observe((id_ for id_, _ in gone_rows), now=tick)
        gone = BitMap(num for _, num in gone_rows if num is not None)
        if gone:
            self.universe_bm -= gone
            for cached in self.leaves.values():
                cached.bitmap -= gone
        if dirty := dirty - set(gone):
            self._recompute(facts, sorted(dirty), list(self.leaves.items()), now=now, changed=True)

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
        names = {k.name for k, _ in leaves if isinstance(k, EventLeaf) and k.kind == "event" and k.name}
        wants_purchases = any(isinstance(k, EventLeaf) and k.kind == "purchase" for k, _ in leaves)
        wants_sessions = any(uses_sessions(k) for k, _ in leaves)
        cutoffs = {leaf: leaf_cutoff(leaf, now) for leaf, _ in leaves}
        for start in range(0, len(nums), _BATCH):
            batch = nums[start : start + _BATCH]
            users = facts.user_facts(
                self.workspace_id, batch, events=names, purchases=wants_purchases, sessions=wants_sessions
            )
            present = BitMap(u.num for u in users)
            missing = BitMap(batch) - present
            if changed:
                self.universe_bm |= present
                self.universe_bm -= missing
            else:  # a user not caught up yet is left to the catch-up that will see it
                users = [u for u in users if u.num in self.universe_bm]
            for leaf, cached in leaves:
                cached.bitmap -= missing
                cutoff = cutoffs[leaf]
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


CohortMembers = Callable[[str, str], BitMap]


class _Source:
    def __init__(
        self, index: WorkspaceIndex, facts: SegmentFacts, cohorts: CohortMembers, now: float
    ) -> None:
        self.index, self.facts, self.cohorts, self.now = index, facts, cohorts, now

    def universe(self) -> BitMap:
        return self.index.universe()

    def leaf(self, leaf: Leaf) -> BitMap:
        if isinstance(leaf, CohortLeaf):
            members = self.cohorts(leaf.partner, leaf.cohort_id)
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
    ) -> BitMap:
        """The members of `node` after catching up with every committed change."""
        index = self.workspace(workspace_id)
        with index.lock:
            index.refresh(facts, now=now)
            return evaluate(node, source=_Source(index, facts, cohorts, now), definitions=definitions)

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
