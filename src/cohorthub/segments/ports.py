"""What the segment use cases and indexes need from storage."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyroaring import BitMap

from cohorthub.cohorts.ports import CohortUnitOfWork
from cohorthub.segments.model import Leaf
from cohorthub.segments.reference import UserFacts


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """A stored segment definition."""

    pk: int
    id: str
    workspace_id: str
    name: str
    description: str
    tags: tuple[str, ...]
    filter: dict[str, Any]
    filter_version: int
    analytics_tracking_enabled: bool
    created_at: float
    updated_at: float
    archived_at: float | None = None


@dataclass(frozen=True, slots=True)
class CohortState:
    """Where a cohort's membership stands in storage."""

    pk: int
    name: str
    version: int
    snapshot_version: int


@dataclass(frozen=True, slots=True)
class Marks:
    """High-water marks of every change source of a workspace."""

    change_id: int
    event_id: int
    purchase_id: int
    deletion_id: int


#: (id, user_num) of one change row; user_num is None for a row of another workspace.
ChangeRow = tuple[int, int | None]

#: The change sources catch-up follows, each an increasing id: user change stamps, events, purchases,
#: and deletion tombstones.
SOURCES = ("users", "events", "purchases", "deletions")


@dataclass(frozen=True, slots=True)
class FactsWanted:
    """Which facts the cached leaves need of a changed user besides the `users` row."""

    events: frozenset[str] = frozenset()  # custom event names
    purchases: bool = False
    sessions: bool = False
    standard: frozenset[str] | None = None  # the standard columns read (None: every one)
    custom: bool = True  # the custom attributes


@dataclass(frozen=True, slots=True)
class Changes:
    """What one catch-up probe read, in one statement: one round trip and one snapshot.

    `rows`: per source, the rows past its mark or among its gaps. `cohorts`: (pk, version) of each cohort
    asked for that exists. `snapshot`: the probe's PostgreSQL snapshot bounds (xmin, xmax) as integers;
    None where ids become visible in id order (SQLite's single writer), so an id missing below the newest
    one read is never filled later. `covered`: the changed users of the workspace (the user numbers of
    `users`, `events` and `purchases` rows), lowest first and at most a bound, whose facts the same
    statement read; `facts`: those of them still in the workspace. `segments`: (stored filter text,
    updated_at) of each segment asked for that exists.
    """

    rows: Mapping[str, list[ChangeRow]]
    cohorts: Mapping[tuple[str, str], tuple[int, int]]
    snapshot: tuple[int, int] | None
    covered: list[int] = field(default_factory=list)
    facts: list[UserFacts] = field(default_factory=list)
    segments: Mapping[str, tuple[str, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LeafRows:
    """A leaf's members as storage found them: `nums`, or the workspace's other users when `complement`.

    `moments` holds, for relative-time leaves, (time, num) pairs at or after the leaf's current
    cutoff: the moments at which the leaf may change for that user as the window slides.
    """

    nums: BitMap
    complement: bool = False
    moments: list[tuple[float, int]] = field(default_factory=list)


class SegmentFacts(Protocol):
    """The read side the indexes catch up from (each method one indexed query)."""

    def marks(self, workspace_id: str) -> Marks: ...
    def universe(self, workspace_id: str) -> BitMap: ...
    def leaf_rows(self, workspace_id: str, leaf: Leaf, *, now: float) -> LeafRows: ...
    def changes(
        self,
        workspace_id: str,
        after: Mapping[str, tuple[int, Collection[int]]],
        cohorts: Collection[tuple[str, str]],
        wanted: FactsWanted | None = None,
        segments: Collection[str] = (),
    ) -> Changes: ...
    def user_facts(
        self, workspace_id: str, nums: list[int], *, events: set[str], purchases: bool, sessions: bool = False
    ) -> list[UserFacts]: ...
    def cohort_state(self, workspace_id: str, partner: str, cohort_id: str) -> CohortState | None: ...


class SegmentRepository(SegmentFacts, Protocol):
    """Segment definitions, size history and membership snapshots."""

    def add(self, record: SegmentRecord) -> int: ...
    def update(self, record: SegmentRecord) -> None: ...
    def get(self, workspace_id: str, segment_id: str) -> SegmentRecord | None: ...
    def all(self, workspace_id: str) -> list[SegmentRecord]: ...
    def active(self) -> list[tuple[str, str]]: ...
    def record_size(self, segment_pk: int, *, at: float, size: int) -> None: ...
    def sizes(self, segment_pk: int, *, since: float) -> list[tuple[float, int]]: ...
    def add_snapshot(self, segment_pk: int, *, at: float, bitmap: bytes, keep: int) -> None: ...
    def snapshot_at(self, segment_pk: int, at: float) -> tuple[float, bytes] | None: ...
    def record_deletions(self, workspace_id: str, nums: list[int], *, now: float) -> None: ...
    def user_num(self, workspace_id: str, external_id: str) -> int | None: ...
    def members(self, nums: list[int]) -> list[tuple[int, str, str | None]]: ...


class SegmentUnitOfWork(CohortUnitOfWork, Protocol):
    """A transaction that can see segments, cohorts and the facts segments filter on."""

    @property
    def segments(self) -> SegmentRepository: ...
