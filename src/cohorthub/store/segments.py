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

from cohorthub.segments.model import STANDARD_ATTRIBUTES, Leaf
from cohorthub.segments.ports import (
    SOURCES,
    ChangeRow,
    Changes,
    CohortState,
    FactsWanted,
    LeafRows,
    Marks,
    SegmentRecord,
)
from cohorthub.segments.reference import UserFacts
from cohorthub.store import segment_leaves
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

_STANDARD = [*STANDARD_ATTRIBUTES, "email_subscribe"]
_FACT_NAMES = ["num", "workspace_id", "external_id", "custom_attributes", *_STANDARD]
_FACT_COLUMNS = ", ".join(_FACT_NAMES)
_REAL_FACTS = ("created_at",)
_TIME = '"time"'
_FILTER = '"filter"'
#: Changed users whose facts the catch-up probe reads itself; catch-up reads any others in batches.
_COVERED = 2000
#: source -> (table, id column, user number column), for the catch-up probe.
_CHANGE_SOURCES = {
    "users": ("users", "change_id", "num"),
    "events": ("custom_events", "id", "user_num"),
    "purchases": ("purchases", "id", "user_num"),
    "deletions": ("segment_user_deletions", "id", "user_num"),
}
_MAX_ID = 2**63 - 1
_PG_XMIN = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
_PG_XMAX = "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"


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


def _json(value: Any) -> Any:
    """A JSON aggregate as Python (psycopg decodes `json` itself; SQLite answers text)."""
    return json.loads(value) if isinstance(value, str) else value


def _probe_sql(
    changes: str, wanted: FactsWanted | None, workspace_id: str, segment_ids: list[str], *, pg: bool
) -> tuple[str, list[Any]]:
    """The probe over the change rows `changes` (src, id, num, mine): one row of JSON arrays.

    Its columns: the change rows; (id, filter, updated_at) of the segments `segment_ids`; then, when
    `wanted`, the `users` rows, events, purchases and sessions of the first `_COVERED` changed users of
    the workspace. Times leave SQLite as text with 17 significant digits (`%!.17g`: its JSON keeps 15
    digits and its plain `%.17g` 16, which would cut them).
    """

    def agg(columns: str) -> str:
        if pg:
            return f"COALESCE(json_agg(json_build_array({columns})), '[]'::json)"
        return f"json_group_array(json_array({columns}))"

    def real(column: str) -> str:
        return column if pg else f"printf('%!.17g', {column})"

    dirty = "= ANY(ARRAY(SELECT num FROM dirty))" if pg else "IN (SELECT num FROM dirty)"
    selects = [f"(SELECT {agg('src, id, num, mine')} FROM ch)"]
    extra: list[Any] = []
    if segment_ids:
        in_ids = "= ANY(%s)" if pg else f"IN ({', '.join('?' * len(segment_ids))})"
        at = "CAST(updated_at AS TEXT)" if pg else real("updated_at")
        mark = "%s" if pg else "?"
        columns = f"id, {_FILTER}, {at}"
        selects.append(f"(SELECT {agg(columns)} FROM segments WHERE workspace_id = {mark} AND id {in_ids})")
        extra += [workspace_id, segment_ids] if pg else [workspace_id, *segment_ids]
    else:
        selects.append("NULL")
    if wanted is not None:
        columns = ", ".join(real(c) if c in _REAL_FACTS else c for c in _FACT_NAMES)
        selects.append(f"(SELECT {agg(columns)} FROM users WHERE num {dirty})")
        if wanted.events:
            names = sorted(wanted.events)
            in_names = "= ANY(%s)" if pg else f"IN ({', '.join('?' * len(names))})"
            selects.append(
                f"(SELECT {agg('user_num, name, ' + real(_TIME))} FROM custom_events "
                f"WHERE user_num {dirty} AND name {in_names})"
            )
            extra += [names] if pg else names
        else:
            selects.append("NULL")
        if wanted.purchases:
            selects.append(
                f"(SELECT {agg('user_num, product_id, ' + real(_TIME))} FROM purchases "
                f"WHERE user_num {dirty})"
            )
        else:
            selects.append("NULL")
        if wanted.sessions:
            selects.append(
                f"(SELECT {agg('user_num, ' + real('started_at'))} FROM sdk_sessions WHERE user_num {dirty})"
            )
        else:
            selects.append("NULL")
    written = "src BETWEEN 0 AND 2 AND mine = 1"
    sql = (
        f"WITH ch(src, id, num, mine) AS ({changes}), "
        f"dirty AS (SELECT DISTINCT num FROM ch WHERE {written} ORDER BY num LIMIT {_COVERED}) "
        f"SELECT {', '.join(selects)}"
    )
    return sql, extra


def _facts(workspace_id: str, users_: Any, events: Any, purchases_: Any, sessions: Any) -> list[UserFacts]:
    """User facts from the probe's JSON arrays (rows of `_FACT_NAMES`; (num, name, time) events; ...)."""
    by_event: dict[int, dict[str, list[float]]] = {}
    for num, name, at in events or ():
        by_event.setdefault(num, {}).setdefault(name, []).append(float(at))
    by_purchase: dict[int, list[tuple[str, float]]] = {}
    for num, product, at in purchases_ or ():
        by_purchase.setdefault(num, []).append((product, float(at)))
    by_session: dict[int, list[float]] = {}
    for num, at in sessions or ():
        by_session.setdefault(num, []).append(float(at))
    out = []
    for values in users_ or ():
        row = dict(zip(_FACT_NAMES, values, strict=True))
        if row["workspace_id"] != workspace_id:
            continue
        for name in _REAL_FACTS:
            row[name] = float(row[name]) if row[name] is not None else None
        num = row["num"]
        out.append(_user(row, by_event.get(num, {}), by_purchase.get(num, []), by_session.get(num, [])))
    return out


def _user(
    row: Mapping[str, Any],
    events: dict[str, list[float]],
    purchases_: list[tuple[str, float]],
    sessions: list[float],
) -> UserFacts:
    return UserFacts(
        num=row["num"],
        external_id=row["external_id"],
        standard={k: row[k] for k in _STANDARD},
        custom=_custom(row["custom_attributes"]),
        events=events,
        purchases=purchases_,
        sessions=sessions,
    )


def _custom(text: str | None) -> dict[str, Any]:
    value = json.loads(text) if text and text != "{}" else {}
    return value if isinstance(value, dict) else {}


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
        """Every source's rows past its mark (or among its gaps), the cohorts' versions, the stored
        definitions of `segments` and, when `wanted`, the facts of the first `_COVERED` changed users: one
        statement answering one row.

        One row, not one per change: SQLite's driver lets go of the interpreter lock at every row it
        steps, and under concurrent writers each step could wait for the lock again. Rows are read by id
        only (new rows of every workspace, those of others without a user number): with the workspace in
        the WHERE clause SQLite would walk the workspace's whole index. On PostgreSQL the same statement
        returns its snapshot's bounds, which tell when a gap can no longer be filled.
        """
        pg = self._conn.dialect.name == "postgresql"
        mark = "%s" if pg else "?"
        parts: list[str] = []
        args: list[Any] = []
        for no, source in enumerate(SOURCES):
            table, id_col, num_col = _CHANGE_SOURCES[source]
            high, gaps = after[source]
            # One range from the lowest gap: with the upper bound PostgreSQL estimates it as narrow even
            # without statistics (a table loaded in bulk and not analyzed yet) and scans the index, where
            # `> mark` alone, or `OR id = ANY(gaps)`, scans the table. The ids already seen are filtered.
            low = min(gaps, default=high + 1) - 1
            where = f"{id_col} > {mark} AND {id_col} <= {_MAX_ID}"
            args += [workspace_id, low]
            if gaps and pg:
                where += f" AND ({id_col} > {mark} OR {id_col} = ANY({mark}))"
                args += [high, sorted(gaps)]
            elif gaps:
                where += f" AND ({id_col} > ? OR {id_col} IN ({', '.join('?' * len(gaps))}))"
                args += [high, *sorted(gaps)]
            parts.append(
                f"SELECT {no}, {id_col}, {num_col}, CASE WHEN workspace_id = {mark} THEN 1 ELSE 0 END "
                f"FROM {table} WHERE {where}"
            )
        keys = list(cohorts)
        for no, (partner, cohort_id) in enumerate(keys, start=len(SOURCES)):
            parts.append(
                f"SELECT {no}, pk, version, 1 FROM cohorts "
                f"WHERE workspace_id = {mark} AND partner = {mark} AND cohort_id = {mark}"
            )
            args += [workspace_id, partner, cohort_id]
        if pg:
            parts.append(f"SELECT -1, {_PG_XMIN}, {_PG_XMAX}, 0")
        sql, extra = _probe_sql(" UNION ALL ".join(parts), wanted, workspace_id, sorted(segments), pg=pg)
        row = self._conn.exec_driver_sql(sql, tuple(args + extra)).one()
        stored = {id_: (text, float(at)) for id_, text, at in _json(row[1]) or ()}
        rows: dict[str, list[ChangeRow]] = {source: [] for source in SOURCES}
        found: dict[tuple[str, str], tuple[int, int]] = {}
        snapshot: tuple[int, int] | None = None
        for no, a, b, mine in _json(row[0]):
            if no < 0:
                snapshot = (int(a), int(b))
            elif no < len(SOURCES):
                rows[SOURCES[no]].append((int(a), int(b) if mine else None))
            else:
                found[keys[no - len(SOURCES)]] = (int(a), int(b))
        if wanted is None:
            return Changes(rows, found, snapshot, segments=stored)
        written = {num for source in SOURCES[:3] for _, num in rows[source] if num is not None}
        covered = sorted(written)[:_COVERED]
        facts = _facts(workspace_id, *(_json(v) for v in row[2:]))
        return Changes(rows, found, snapshot, covered, facts, stored)

    def user_facts(
        self, workspace_id: str, nums: list[int], *, events: set[str], purchases: bool, sessions: bool = False
    ) -> list[UserFacts]:
        """Everything but cohorts about the given users (those still in the workspace)."""
        return self._user_facts(
            workspace_id, nums, events=events, with_purchases=purchases, with_sessions=sessions
        )

    def _user_facts(
        self,
        workspace_id: str,
        nums: list[int],
        *,
        events: set[str],
        with_purchases: bool,
        with_sessions: bool = False,
    ) -> list[UserFacts]:
        # Driver-level SQL (no statement building per call), by primary key / user number only: with the
        # workspace in the WHERE clause SQLite scans the workspace's index.
        pg = self._conn.dialect.name == "postgresql"
        args: list[Any] = [list(nums)] if pg else list(nums)
        in_nums = "= ANY(%s)" if pg else f"IN ({', '.join('?' * len(nums))})"
        sql = f"SELECT {_FACT_COLUMNS} FROM users WHERE num {in_nums}"
        found = [dict(zip(_FACT_NAMES, r, strict=True)) for r in self._conn.exec_driver_sql(sql, tuple(args))]
        found = [r for r in found if r["workspace_id"] == workspace_id]
        by_event: dict[int, dict[str, list[float]]] = {}
        if events and found:
            names: list[Any] = sorted(events)
            in_names = "= ANY(%s)" if pg else f"IN ({', '.join('?' * len(names))})"
            sql = f'SELECT user_num, name, "time" FROM custom_events WHERE user_num {in_nums} '
            sql += f"AND name {in_names}"
            for num, name, at in self._conn.exec_driver_sql(sql, tuple(args + ([names] if pg else names))):
                by_event.setdefault(num, {}).setdefault(name, []).append(float(at))
        by_purchase: dict[int, list[tuple[str, float]]] = {}
        if with_purchases and found:
            sql = f'SELECT user_num, product_id, "time" FROM purchases WHERE user_num {in_nums}'
            for num, product, at in self._conn.exec_driver_sql(sql, tuple(args)):
                by_purchase.setdefault(num, []).append((product, float(at)))
        by_session: dict[int, list[float]] = {}
        if with_sessions and found:
            sql = f"SELECT user_num, started_at FROM sdk_sessions WHERE user_num {in_nums}"
            for num, at in self._conn.exec_driver_sql(sql, tuple(args)):
                by_session.setdefault(num, []).append(float(at))
        return [
            _user(
                row,
                by_event.get(row["num"], {}),
                by_purchase.get(row["num"], []),
                by_session.get(row["num"], []),
            )
            for row in found
        ]

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
