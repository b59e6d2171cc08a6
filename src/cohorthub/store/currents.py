"""SQL repository for Currents: connectors, leased batches, dead letters and statistics.

A connector's cursor marks the outbox position up to which events have been put into
batches. On SQLite writers are serialized, so `seq` commits in order and the cursor is a
`seq`. On PostgreSQL a later `seq` can commit first; there the cursor is `(xid, seq)` and
only rows whose transaction is older than every running one (`pg_snapshot_xmin`) are read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
    text,
    update,
)

from cohorthub.config import Secret
from cohorthub.currents.model import Connector, ConnectorState, ConnectorStats, EventSelection
from cohorthub.currents.ports import Claim, Cursor, Resolution, Tally
from cohorthub.store.tables import outbox, workspaces

_meta = MetaData()
_Id = BigInteger().with_variant(Integer(), "sqlite")

connectors = Table(
    "currents_connectors",
    _meta,
    Column("id", String(32), primary_key=True),
    Column("workspace_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("url", Text, nullable=False),
    Column("token", Text),
    Column("events", Text, nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("cursor_xid", BigInteger, nullable=False),
    Column("cursor_seq", BigInteger, nullable=False),
    Column("blocked_until", Float),
    Column("halted", Boolean, nullable=False),
    Column("delivered", BigInteger, nullable=False),
    Column("retried", BigInteger, nullable=False),
    Column("dropped", BigInteger, nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("last_error_at", Float),
    Column("last_success_at", Float),
)
batches = Table(
    "currents_batches",
    _meta,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("connector_id", String(32), nullable=False),
    Column("seqs", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("oldest_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("first_failure_at", Float),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until", Float),
    Column("last_status", Integer),
    Column("last_error", Text),
)
dead_letters = Table(
    "currents_dead_letters",
    _meta,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("connector_id", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("status", Integer),
    Column("error", Text),
    Column("attempts", Integer, nullable=False),
    Column("dropped_at", Float, nullable=False),
)

_PG_XMIN = "pg_snapshot_xmin(pg_current_snapshot())"
# the hot read of a round, below the SQL expression layer: (seq, xid, event_type, created_at, payload)
_PG_LOCK_CURSOR = "SELECT cursor_xid, cursor_seq FROM currents_connectors WHERE id = %(cid)s FOR UPDATE"
_PG_AFTER_CURSOR = (
    "SELECT o.seq, o.xid::text::bigint, o.event_type, o.created_at, o.payload FROM outbox o "
    "WHERE o.workspace_id = %(ws)s AND (o.xid, o.seq) > (CAST(CAST(%(cx)s AS text) AS xid8), %(cs)s) "
    f"AND o.xid < {_PG_XMIN} ORDER BY o.xid, o.seq LIMIT %(n)s"
)
_SQLITE_AFTER_CURSOR = (
    "SELECT seq, 0, event_type, created_at, payload FROM outbox WHERE workspace_id = ? "
    "AND seq > (SELECT cursor_seq FROM currents_connectors WHERE id = ?) ORDER BY seq LIMIT ?"
)


def pack_seqs(seqs: Sequence[int]) -> bytes:
    """Outbox positions as little-endian int64s."""
    return struct.pack(f"<{len(seqs)}q", *seqs)


def unpack_seqs(data: bytes) -> tuple[int, ...]:
    """The inverse of `pack_seqs`."""
    return struct.unpack(f"<{len(data) // 8}q", data)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _like(pattern: str) -> str:
    """A `*`/`?` glob as a SQL LIKE pattern (escape character `\\`)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


class SqlCurrentsRepository:
    """Currents state in SQL, bound to one transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._pg = conn.dialect.name == "postgresql"

    # -- connectors --------------------------------------------------------------------------

    def workspace_exists(self, workspace_id: str) -> bool:
        """True when the workspace exists."""
        query = select(workspaces.c.id).where(workspaces.c.id == workspace_id)
        return self._conn.execute(query).first() is not None

    def add_connector(self, connector: Connector) -> None:
        """Insert a connector whose cursor starts at the current end of the outbox."""
        if self._pg:
            cursor_xid = int(self._conn.execute(text(f"SELECT {_PG_XMIN}::text::bigint")).scalar_one())
            cursor_seq = 0
        else:
            cursor_xid = 0
            cursor_seq = self._conn.execute(select(func.coalesce(func.max(outbox.c.seq), 0))).scalar_one()
        self._conn.execute(
            insert(connectors).values(
                id=connector.id,
                workspace_id=connector.workspace_id,
                kind=connector.kind,
                url=connector.url,
                token=connector.token.reveal() if connector.token else None,
                events=str(connector.events),
                batch_size=connector.batch_size,
                paused=connector.paused,
                created_at=connector.created_at,
                cursor_xid=cursor_xid,
                cursor_seq=cursor_seq,
                halted=False,
                delivered=0,
                retried=0,
                dropped=0,
            )
        )

    def get_connector(self, connector_id: str) -> Connector | None:
        """The connector with that id, if any."""
        row = self._conn.execute(select(connectors).where(connectors.c.id == connector_id)).first()
        return _connector(row) if row else None

    def list_connectors(self, workspace_id: str | None = None) -> list[Connector]:
        """Connectors, oldest first, optionally of one workspace."""
        query = select(connectors).order_by(connectors.c.created_at, connectors.c.id)
        if workspace_id is not None:
            query = query.where(connectors.c.workspace_id == workspace_id)
        return [_connector(row) for row in self._conn.execute(query)]

    def set_paused(self, connector_id: str, paused: bool) -> bool:
        """Pause or resume; False when there is no such connector."""
        query = update(connectors).where(connectors.c.id == connector_id).values(paused=paused)
        return self._conn.execute(query).rowcount > 0

    def delete_connector(self, connector_id: str) -> bool:
        """Delete a connector with its batches and dead letters; False when there is none."""
        self._conn.execute(delete(batches).where(batches.c.connector_id == connector_id))
        self._conn.execute(delete(dead_letters).where(dead_letters.c.connector_id == connector_id))
        return self._conn.execute(delete(connectors).where(connectors.c.id == connector_id)).rowcount > 0

    # -- delivery ----------------------------------------------------------------------------

    def connector_cursor(self, connector_id: str) -> Cursor | None:
        """The connector and its delivery state, not locked (a round locks the row only to claim)."""
        row = self._conn.execute(select(connectors).where(connectors.c.id == connector_id)).first()
        if row is None:
            return None
        return Cursor(connector=_connector(row), blocked_until=row.blocked_until, halted=row.halted)

    def lease_due(
        self, connector_id: str, *, now: float, limit: int, owner: str, lease_until: float
    ) -> list[Claim]:
        """Lease batches due for a (re)try, including those whose lease expired."""
        query = (
            select(batches.c.id, batches.c.seqs, batches.c.attempts, batches.c.first_failure_at)
            .where(
                batches.c.connector_id == connector_id,
                batches.c.next_attempt_at <= now,
                (batches.c.lease_until.is_(None)) | (batches.c.lease_until < now),
            )
            .order_by(batches.c.next_attempt_at, batches.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = self._conn.execute(query).all()
        if not rows:
            return []
        self._conn.execute(
            update(batches)
            .where(batches.c.id.in_([r.id for r in rows]))
            .values(lease_owner=owner, lease_until=lease_until)
        )
        seqs = {r.id: unpack_seqs(r.seqs) for r in rows}
        payloads = self._payloads([s for group in seqs.values() for s in group])
        return [
            Claim(
                batch_id=r.id,
                seqs=tuple(s for s in seqs[r.id] if s in payloads),
                payloads=tuple(payloads[s] for s in seqs[r.id] if s in payloads),
                attempts=r.attempts,
                first_failure_at=r.first_failure_at,
            )
            for r in rows
        ]

    def claim_new(
        self, connector: Connector, *, max_events: int, owner: str, lease_until: float, now: float
    ) -> list[Claim]:
        """Put the next selected outbox events into leased batches and move the cursor past them.

        The connector row is locked from here to the end of the transaction, so two workers
        never claim the same events; leasing due batches does not wait for that lock.
        """
        rows = self._after_cursor(connector.id, connector.workspace_id, max_events)
        if not rows:
            return []
        selected = rows if "*" in connector.events.patterns else _select(connector.events, rows)
        groups = list(_chunks(selected, connector.batch_size))
        ids = self._insert_batches(
            connector.id,
            [([r[0] for r in g], min(r[3] for r in g)) for g in groups],
            next_attempt_at=now,
            owner=owner,
            lease_until=lease_until,
        )
        last = rows[-1]
        self._conn.execute(
            update(connectors)
            .where(connectors.c.id == connector.id)
            .values(cursor_xid=last[1], cursor_seq=last[0])
        )
        return [
            Claim(batch_id, tuple(r[0] for r in g), tuple(r[4] for r in g), 0, None)
            for batch_id, g in zip(ids, groups, strict=True)
        ]

    def next_due_at(self, connector_id: str) -> float | None:
        """When the connector's earliest waiting or leased batch becomes due."""
        due = func.min(func.coalesce(batches.c.lease_until, batches.c.next_attempt_at))
        value = self._conn.execute(select(due).where(batches.c.connector_id == connector_id)).scalar_one()
        return None if value is None else float(value)

    def settle_batches(self, connector_id: str, resolutions: Sequence[Resolution], *, now: float) -> Tally:
        """Delete, reschedule, split or dead-letter the sent batches; count what was found."""
        delivered = self._delete_batches(sorted(r.batch_id for r in resolutions if r.kind == "ack"))
        retried = dropped = 0
        for r in sorted(resolutions, key=lambda r: r.batch_id):  # one lock order for every worker
            if r.kind == "release":
                self._update_batch(r.batch_id, next_attempt_at=r.next_attempt_at)
            elif r.kind in ("retry", "halt"):
                found = self._update_batch(
                    r.batch_id,
                    next_attempt_at=r.next_attempt_at,
                    attempts=r.attempts,
                    first_failure_at=r.first_failure_at,
                    last_status=r.status,
                    last_error=r.error,
                )
                retried += r.size if found else 0
            elif r.kind == "split":
                size, oldest, _seqs = self._delete_batch(r.batch_id)
                if size:
                    self._insert_batches(connector_id, [(p, oldest) for p in r.parts], next_attempt_at=now)
                retried += size
            elif r.kind == "drop":
                size, _oldest, seqs = self._delete_batch(r.batch_id)
                self._dead_letter(connector_id, seqs, r, now)
                dropped += size
        return Tally(delivered=delivered, retried=retried, dropped=dropped)

    def record_outcomes(self, connector_id: str, tally: Tally, state: Mapping[str, Any]) -> None:
        """Add the tally to the connector's counters and apply its state changes."""
        if not (tally.delivered or tally.retried or tally.dropped or state):
            return
        self._conn.execute(
            update(connectors)
            .where(connectors.c.id == connector_id)
            .values(
                delivered=connectors.c.delivered + tally.delivered,
                retried=connectors.c.retried + tally.retried,
                dropped=connectors.c.dropped + tally.dropped,
                **state,
            )
        )

    # -- replay ------------------------------------------------------------------------------

    def replay_since(self, connector: Connector, *, since: float, now: float) -> int:
        """Queue again every selected event recorded since `since` that the cursor has passed."""
        row = self._conn.execute(
            select(connectors.c.cursor_xid, connectors.c.cursor_seq).where(connectors.c.id == connector.id)
        ).one()
        query = select(outbox.c.seq, outbox.c.event_type, outbox.c.created_at).where(
            outbox.c.workspace_id == connector.workspace_id, outbox.c.created_at >= since
        )
        if self._pg:
            passed = text("(outbox.xid, outbox.seq) <= (CAST(CAST(:cx AS text) AS xid8), :cs)")
            query = query.where(passed.bindparams(cx=row.cursor_xid, cs=row.cursor_seq))
        else:
            query = query.where(outbox.c.seq <= row.cursor_seq)
        rows = [r for r in self._conn.execute(query.order_by(outbox.c.seq)) if connector.events.matches(r[1])]
        groups = [([r[0] for r in g], min(r[2] for r in g)) for g in _chunks(rows, connector.batch_size)]
        self._insert_batches(connector.id, groups, next_attempt_at=now)
        return len(rows)

    def replay_dead_letters(self, connector: Connector, *, now: float) -> int:
        """Queue every dead letter of the connector again and clear them."""
        query = (
            select(dead_letters.c.seq, outbox.c.created_at)
            .join(outbox, outbox.c.seq == dead_letters.c.seq)
            .where(dead_letters.c.connector_id == connector.id)
            .order_by(dead_letters.c.id)
        )
        rows = self._conn.execute(query).all()
        groups = [([r[0] for r in g], min(r[1] for r in g)) for g in _chunks(rows, connector.batch_size)]
        self._insert_batches(connector.id, groups, next_attempt_at=now)
        self._conn.execute(delete(dead_letters).where(dead_letters.c.connector_id == connector.id))
        return len(rows)

    # -- statistics --------------------------------------------------------------------------

    def stats(self, connector: Connector, *, now: float) -> ConnectorStats:
        """Queue sizes, counters, the oldest undelivered event and the last error."""
        c = self._conn.execute(select(connectors).where(connectors.c.id == connector.id)).one()
        leased = (batches.c.lease_until.is_not(None)) & (batches.c.lease_until >= now)
        b = self._conn.execute(
            select(
                func.coalesce(func.sum(batches.c.size), 0),
                func.coalesce(func.sum(batches.c.size).filter(leased), 0),
                func.min(batches.c.oldest_at),
                func.min(batches.c.next_attempt_at).filter(~leased),
            ).where(batches.c.connector_id == connector.id)
        ).one()
        new_count, new_oldest = self._count_after_cursor(connector, c.cursor_xid, c.cursor_seq)
        dead = self._conn.execute(
            select(func.count()).where(dead_letters.c.connector_id == connector.id)
        ).scalar_one()
        oldest = min((t for t in (b[2], new_oldest) if t is not None), default=None)
        blocked = c.blocked_until is not None and c.blocked_until > now
        state = (
            ConnectorState.PAUSED
            if c.paused
            else (ConnectorState.HALTED if c.halted else ConnectorState.BACKING_OFF)
            if blocked
            else ConnectorState.ACTIVE
        )
        return ConnectorStats(
            connector_id=connector.id,
            state=state,
            queued=int(b[0]) - int(b[1]) + new_count,
            in_flight=int(b[1]),
            delivered=c.delivered,
            retried=c.retried,
            dropped=c.dropped,
            dead_letters=int(dead),
            oldest_undelivered_age=None if oldest is None else max(0.0, now - oldest),
            last_status=c.last_status,
            last_error=c.last_error,
            last_error_at=c.last_error_at,
            next_attempt_at=b[3],
        )

    # -- helpers -----------------------------------------------------------------------------

    def _after_cursor(self, connector_id: str, workspace_id: str, limit: int) -> list[Any]:
        """(seq, xid, event_type, created_at, payload) rows past the cursor, in cursor order.

        On PostgreSQL the connector row is locked first (FOR UPDATE) and the cursor read under
        that lock, so a claim that waited sees the cursor the previous claim committed.
        """
        if not self._pg:
            return list(self._conn.exec_driver_sql(_SQLITE_AFTER_CURSOR, (workspace_id, connector_id, limit)))
        cursor = self._conn.exec_driver_sql(_PG_LOCK_CURSOR, {"cid": connector_id}).one()
        # Read in index order and stop at the limit: without this, a planner with stale statistics
        # (a backlog inserted since the last ANALYZE) reads every row past the cursor and sorts.
        self._conn.exec_driver_sql("SET LOCAL enable_sort = off")
        params = {"ws": workspace_id, "cx": cursor[0], "cs": cursor[1], "n": limit}
        rows = list(self._conn.exec_driver_sql(_PG_AFTER_CURSOR, params))
        self._conn.exec_driver_sql("RESET enable_sort")
        return rows

    def _count_after_cursor(self, connector: Connector, cx: int, cs: int) -> tuple[int, float | None]:
        if self._pg:
            match = " OR ".join(f"event_type LIKE :p{i}" for i in range(len(connector.events.patterns)))
            where = "workspace_id = :ws AND (xid, seq) > (CAST(CAST(:cx AS text) AS xid8), :cs)"
        else:
            match = " OR ".join(f"event_type GLOB :p{i}" for i in range(len(connector.events.patterns)))
            where = "workspace_id = :ws AND seq > :cs"
        params: dict[str, Any] = {"ws": connector.workspace_id, "cx": cx, "cs": cs}
        for i, pattern in enumerate(connector.events.patterns):
            params[f"p{i}"] = _like(pattern) if self._pg else pattern
        sql = f"SELECT count(*), min(created_at) FROM outbox WHERE {where} AND ({match})"
        row = self._conn.execute(text(sql), params).one()
        return int(row[0]), row[1]

    def _payloads(self, seqs: list[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for chunk in _chunks(seqs, 5_000):
            query = select(outbox.c.seq, outbox.c.payload).where(outbox.c.seq.in_(chunk))
            out.update((seq, bytes(payload)) for seq, payload in self._conn.execute(query))
        return out

    def _insert_batches(
        self,
        connector_id: str,
        groups: Sequence[tuple[Sequence[int], float]],
        *,
        next_attempt_at: float,
        owner: str | None = None,
        lease_until: float | None = None,
    ) -> list[int]:
        if not groups:
            return []
        rows = [
            {
                "connector_id": connector_id,
                "seqs": pack_seqs(seqs),
                "size": len(seqs),
                "oldest_at": oldest,
                "attempts": 0,
                "next_attempt_at": next_attempt_at,
                "lease_owner": owner,
                "lease_until": lease_until,
            }
            for seqs, oldest in groups
        ]
        result = self._conn.execute(
            insert(batches).returning(batches.c.id, sort_by_parameter_order=True), rows
        )
        return [int(r[0]) for r in result]

    def _delete_batches(self, ids: Sequence[int]) -> int:
        """Delete batches; the number of events they held."""
        deleted = 0
        for chunk in _chunks(ids, 5_000):
            query = delete(batches).where(batches.c.id.in_(chunk)).returning(batches.c.size)
            deleted += sum(self._conn.execute(query).scalars())
        return deleted

    def _delete_batch(self, batch_id: int) -> tuple[int, float, tuple[int, ...]]:
        """Delete a batch; (size, oldest_at, seqs), or (0, 0.0, ()) when it was already gone."""
        query = delete(batches).where(batches.c.id == batch_id)
        row = self._conn.execute(query.returning(batches.c.size, batches.c.oldest_at, batches.c.seqs)).first()
        return (0, 0.0, ()) if row is None else (row[0], row[1], unpack_seqs(row[2]))

    def _update_batch(self, batch_id: int, **values: Any) -> bool:
        query = update(batches).where(batches.c.id == batch_id)
        return self._conn.execute(query.values(lease_owner=None, lease_until=None, **values)).rowcount > 0

    def _dead_letter(self, connector_id: str, seqs: Sequence[int], r: Resolution, now: float) -> None:
        for chunk in _chunks(list(seqs), 5_000):
            rows = self._conn.execute(
                select(outbox.c.seq, outbox.c.event_id).where(outbox.c.seq.in_(chunk))
            ).all()
            if rows:
                self._conn.execute(
                    insert(dead_letters),
                    [
                        {
                            "connector_id": connector_id,
                            "seq": seq,
                            "event_id": event_id,
                            "status": r.status,
                            "error": r.error,
                            "attempts": r.attempts,
                            "dropped_at": now,
                        }
                        for seq, event_id in rows
                    ],
                )


def _select(events: EventSelection, rows: Sequence[Any]) -> list[Any]:
    """The rows whose event type is selected (matched once per distinct type)."""
    verdicts: dict[str, bool] = {}
    out = []
    for row in rows:
        keep = verdicts.get(row[2])
        if keep is None:
            keep = verdicts[row[2]] = events.matches(row[2])
        if keep:
            out.append(row)
    return out


def _connector(row: Any) -> Connector:
    return Connector(
        id=row.id,
        workspace_id=row.workspace_id,
        kind=row.kind,
        url=row.url,
        token=Secret(row.token) if row.token else None,
        events=EventSelection.parse(row.events),
        batch_size=row.batch_size,
        paused=bool(row.paused),
        created_at=row.created_at,
    )
