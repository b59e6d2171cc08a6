"""SQL repository for segments and the facts segment indexes read (one indexed query each)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from pyroaring import BitMap
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)

from cohorthub.segments.model import Leaf
from cohorthub.segments.ports import (
    Changes,
    CohortState,
    FactsWanted,
    LeafRows,
    Marks,
    SegmentRecord,
)
from cohorthub.segments.reference import UserFacts
from cohorthub.store import segment_changes, segment_leaves
from cohorthub.store.tables import cohorts, custom_events, purchases, users

_meta = MetaData()
segments = Table(
    "segments",
    _meta,
    Column("pk", BigInteger, primary_key=True, autoincrement=True),
    Column("workspace_id", String(32), nullable=False),
    Column("id", String(36), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("filter", Text, nullable=False),
    Column("filter_version", Integer, nullable=False),
    Column("analytics_tracking_enabled", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("archived_at", Float),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)
segment_sizes = Table(
    "segment_sizes",
    _meta,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("segment_pk", BigInteger, nullable=False),
    Column("at", Float, nullable=False),
    Column("size", BigInteger, nullable=False),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)
segment_snapshots = Table(
    "segment_snapshots",
    _meta,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("segment_pk", BigInteger, nullable=False),
    Column("at", Float, nullable=False),
    Column("bitmap", LargeBinary, nullable=False),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)
segment_user_deletions = Table(
    "segment_user_deletions",
    _meta,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("workspace_id", String(32), nullable=False),
    Column("user_num", BigInteger, nullable=False),
    Column("at", Float, nullable=False),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)


def _record(row: Any) -> SegmentRecord:
    return SegmentRecord(
        pk=row.pk,
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        description=row.description,
        tags=tuple(json.loads(row.tags)),
        filter=json.loads(row.filter),
        filter_version=row.filter_version,
        analytics_tracking_enabled=row.analytics_tracking_enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
    )


class SqlSegmentRepository:
    """Segment definitions, history and the facts the segment indexes read, in SQL."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # -- definitions -------------------------------------------------------------------
    def add(self, record: SegmentRecord) -> int:
        """Insert a segment; its pk."""
        values = self._values(record)
        result = self._conn.execute(insert(segments).values(**values).returning(segments.c.pk))
        return int(result.scalar_one())

    def update(self, record: SegmentRecord) -> None:
        """Overwrite a segment's definition and state."""
        self._conn.execute(update(segments).where(segments.c.pk == record.pk).values(**self._values(record)))

    @staticmethod
    def _values(r: SegmentRecord) -> dict[str, Any]:
        return {
            "workspace_id": r.workspace_id,
            "id": r.id,
            "name": r.name,
            "description": r.description,
            "tags": json.dumps(list(r.tags)),
            "filter": json.dumps(r.filter, sort_keys=True),
            "filter_version": r.filter_version,
            "analytics_tracking_enabled": r.analytics_tracking_enabled,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "archived_at": r.archived_at,
        }

    def get(self, workspace_id: str, segment_id: str) -> SegmentRecord | None:
        """One segment of the workspace."""
        row = self._conn.execute(
            select(segments).where(segments.c.workspace_id == workspace_id, segments.c.id == segment_id)
        ).first()
        return _record(row) if row is not None else None

    def all(self, workspace_id: str) -> list[SegmentRecord]:
        """Every segment of the workspace, oldest first."""
        rows = self._conn.execute(
            select(segments).where(segments.c.workspace_id == workspace_id).order_by(segments.c.created_at)
        )
        return [_record(r) for r in rows]

    def active(self) -> list[tuple[str, str]]:
        """(workspace_id, id) of every non-archived segment, oldest first."""
        rows = self._conn.execute(
            select(segments.c.workspace_id, segments.c.id)
            .where(segments.c.archived_at.is_(None))
            .order_by(segments.c.created_at, segments.c.pk)
        )
        return [(r.workspace_id, r.id) for r in rows]

    # -- history -----------------------------------------------------------------------
    def record_size(self, segment_pk: int, *, at: float, size: int) -> None:
        """Append one point of size history."""
        self._conn.execute(insert(segment_sizes).values(segment_pk=segment_pk, at=at, size=size))

    def sizes(self, segment_pk: int, *, since: float) -> list[tuple[float, int]]:
        """Size history from `since`, oldest first."""
        rows = self._conn.execute(
            select(segment_sizes.c.at, segment_sizes.c.size)
            .where(segment_sizes.c.segment_pk == segment_pk, segment_sizes.c.at >= since)
            .order_by(segment_sizes.c.at)
        )
        return [(r.at, r.size) for r in rows]

    def add_snapshot(self, segment_pk: int, *, at: float, bitmap: bytes, keep: int) -> None:
        """Store a membership snapshot, keeping the newest `keep`."""
        self._conn.execute(insert(segment_snapshots).values(segment_pk=segment_pk, at=at, bitmap=bitmap))
        stale = (
            select(segment_snapshots.c.id)
            .where(segment_snapshots.c.segment_pk == segment_pk)
            .order_by(segment_snapshots.c.at.desc(), segment_snapshots.c.id.desc())
            .offset(keep)
        )
        ids = [r.id for r in self._conn.execute(stale)]
        if ids:
            self._conn.execute(delete(segment_snapshots).where(segment_snapshots.c.id.in_(ids)))

    def snapshot_at(self, segment_pk: int, at: float) -> tuple[float, bytes] | None:
        """The newest snapshot taken at or before `at`."""
        row = self._conn.execute(
            select(segment_snapshots.c.at, segment_snapshots.c.bitmap)
            .where(segment_snapshots.c.segment_pk == segment_pk, segment_snapshots.c.at <= at)
            .order_by(segment_snapshots.c.at.desc(), segment_snapshots.c.id.desc())
            .limit(1)
        ).first()
        return (row.at, bytes(row.bitmap)) if row is not None else None

    def record_deletions(self, workspace_id: str, nums: list[int], *, now: float) -> None:
        """Tombstones for deleted or merged-away users, read by every process's indexes."""
        if nums:
            rows = [{"workspace_id": workspace_id, "user_num": n, "at": now} for n in nums]
            self._conn.execute(insert(segment_user_deletions), rows)

    # -- users -------------------------------------------------------------------------
    def user_num(self, workspace_id: str, external_id: str) -> int | None:
        """The number of the user with that external_id."""
        return self._conn.execute(
            select(users.c.num).where(
                users.c.workspace_id == workspace_id, users.c.external_id == external_id
            )
        ).scalar()

    def members(self, nums: list[int]) -> list[tuple[int, str, str | None]]:
        """(num, braze_id, external_id) of the given users, by num."""
        if not nums:
            return []
        rows = self._conn.execute(
            select(users.c.num, users.c.braze_id, users.c.external_id)
            .where(users.c.num.in_(nums))
            .order_by(users.c.num)
        )
        return [(r.num, r.braze_id, r.external_id) for r in rows]

    # -- facts for the indexes ---------------------------------------------------------
    def marks(self, workspace_id: str) -> Marks:
        """The newest user change stamp and the newest id of every log."""
        c = self._conn
        return Marks(
            change_id=int(c.execute(select(func.max(users.c.change_id))).scalar() or 0),
            event_id=int(c.execute(select(func.max(custom_events.c.id))).scalar() or 0),
            purchase_id=int(c.execute(select(func.max(purchases.c.id))).scalar() or 0),
            deletion_id=int(c.execute(select(func.max(segment_user_deletions.c.id))).scalar() or 0),
        )

    def universe(self, workspace_id: str) -> BitMap:
        """Every user number of the workspace."""
        return segment_leaves.universe(self._conn, workspace_id)

    def leaf_rows(self, workspace_id: str, leaf: Leaf, *, now: float) -> LeafRows:
        """The members of one leaf at `now`, by one narrow query (`store/segment_leaves.py`)."""
        return segment_leaves.leaf_rows(self._conn, workspace_id, leaf, now=now)

    def changes(
        self,
        workspace_id: str,
        after: Mapping[str, tuple[int, Collection[int]]],
        cohorts: Collection[tuple[str, str]],
        wanted: FactsWanted | None = None,
        segments: Collection[str] = (),
    ) -> Changes:
        """Every source's rows past its mark, the cohorts' versions, the stored definitions of `segments`
        and, when `wanted`, the changed users' facts: one statement (`store/segment_changes.py`)."""
        return segment_changes.changes(self._conn, workspace_id, after, cohorts, wanted, segments)

    def user_facts(
        self, workspace_id: str, nums: list[int], *, events: set[str], purchases: bool, sessions: bool = False
    ) -> list[UserFacts]:
        """Everything but cohorts about the given users (those still in the workspace)."""
        return segment_changes.user_facts(
            self._conn, workspace_id, nums, events=events, purchases=purchases, sessions=sessions
        )

    # -- cohorts -----------------------------------------------------------------------
    def cohort_state(self, workspace_id: str, partner: str, cohort_id: str) -> CohortState | None:
        """A cohort's pk, name and versions."""
        row = self._conn.execute(
            select(cohorts.c.pk, cohorts.c.name, cohorts.c.version, cohorts.c.snapshot_version).where(
                cohorts.c.workspace_id == workspace_id,
                cohorts.c.partner == partner,
                cohorts.c.cohort_id == cohort_id,
            )
        ).first()
        if row is None:
            return None
        return CohortState(
            pk=row.pk, name=row.name, version=row.version, snapshot_version=row.snapshot_version
        )
