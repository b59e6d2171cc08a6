"""Relative-time leaves ("within the last N days", "more/less than N days ago") slide with the clock.

Such a leaf compares each relevant time `t` of a user (a custom or standard time attribute, the
times of an event or purchase) with a cutoff, `relative_cutoff(now, days)`. When the cutoff moves
from `c0` to `c1 > c0`, a user's answer can change only if one of their times lies in `[c0, c1)`:
every other comparison gives the same result. A `Timeline` holds, for one cached leaf, the
moments at or after the current cutoff at which a user's answer may change, so a new minute costs
re-evaluating just the users whose moment it passed, never a rescan of the leaf's data.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left

from cohorthub.segments.model import AttributeLeaf, EventLeaf, Leaf, relative_cutoff
from cohorthub.segments.reference import UserFacts, attribute_value, event_times, typed_value


def window_days(leaf: Leaf) -> float | None:
    """The window of a relative-time leaf in days; None for every other leaf."""
    if isinstance(leaf, EventLeaf):
        return leaf.within_days
    if isinstance(leaf, AttributeLeaf) and leaf.op.endswith("_days_ago"):
        assert isinstance(leaf.value, int | float)
        return float(leaf.value)
    return None


def leaf_cutoff(leaf: Leaf, now: float) -> float | None:
    """The cutoff a relative-time leaf compares with at `now`; None for every other leaf."""
    days = window_days(leaf)
    return None if days is None else relative_cutoff(now, days)


def next_moment(leaf: Leaf, user: UserFacts, *, cutoff: float) -> float | None:
    """The earliest relevant time of `user` at or after `cutoff` (None: the answer never changes)."""
    if isinstance(leaf, EventLeaf):
        times = [t for t in event_times(leaf, user) if t >= cutoff]
        return min(times) if times else None
    assert isinstance(leaf, AttributeLeaf)
    moment = typed_value(attribute_value(leaf, user), leaf.data_type)
    return float(moment) if moment is not None and moment >= cutoff else None


class Timeline:
    """(time, num) moments of one relative-time leaf at or after its cutoff, read in time order.

    The moments found when the leaf was built sit in two sorted arrays (16 bytes each); those
    added later (users re-evaluated after a change) in a heap. Stale moments are harmless: they
    only make a user be re-evaluated once more.
    """

    def __init__(self, cutoff: float, moments: list[tuple[float, int]]) -> None:
        ordered = sorted(m for m in moments if m[0] >= cutoff)
        self.cutoff = cutoff
        self._times = array("d", (t for t, _ in ordered))
        self._nums = array("q", (n for _, n in ordered))
        self._pos = 0
        self._late: list[tuple[float, int]] = []

    def __len__(self) -> int:
        return len(self._times) - self._pos + len(self._late)

    def add(self, moment: float | None, num: int) -> None:
        """Remember that the answer for `num` may change when the cutoff passes `moment`."""
        if moment is not None and moment >= self.cutoff:
            heapq.heappush(self._late, (moment, num))

    def advance(self, cutoff: float) -> set[int]:
        """Move to a later cutoff; the users with a moment in `[old cutoff, cutoff)`."""
        if cutoff < self.cutoff:
            raise ValueError("a timeline only moves forward")
        end = bisect_left(self._times, cutoff, self._pos)
        due = set(self._nums[self._pos : end])
        self._pos = end
        while self._late and self._late[0][0] < cutoff:
            due.add(heapq.heappop(self._late)[1])
        if self._pos > 4096 and self._pos * 2 > len(self._times):
            self._times, self._nums = self._times[self._pos :], self._nums[self._pos :]
            self._pos = 0
        self.cutoff = cutoff
        return due
