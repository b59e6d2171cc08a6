"""Delivery rounds: lease due batches, claim new events past the cursor, settle sent batches.

Several workers may run on PostgreSQL. Only a claim locks the connector row (to the end of its
transaction); due batches are leased with `FOR UPDATE SKIP LOCKED`; a round settles its batches
first and writes the connector row (counters, state) last. A live worker renews its short leases;
a batch is due again once its lease ran out (its worker died or stopped renewing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select, update

from cohorthub.currents.model import Connector, EventSelection
from cohorthub.currents.ports import Claim, Resolution, Tally
from cohorthub.store.currents.dead_letters import dead_letter
from cohorthub.store.currents.rows import delete_batch, delete_batches, insert_batches, payloads, update_batch
from cohorthub.store.currents.schema import PG_XMIN, Bound, batches, chunks, connectors, unpack_seqs

_PG_LOCK_CURSOR = "SELECT cursor_xid, cursor_seq FROM currents_connectors WHERE id = %(cid)s FOR UPDATE"
_PG_AFTER_CURSOR = (
    "SELECT o.seq, o.xid::text::bigint, o.event_type, o.created_at, o.payload FROM outbox o "
    "WHERE o.workspace_id = %(ws)s AND (o.xid, o.seq) > (CAST(CAST(%(cx)s AS text) AS xid8), %(cs)s) "
    f"AND o.xid < {PG_XMIN} ORDER BY o.xid, o.seq LIMIT %(n)s"
)
_SQLITE_AFTER_CURSOR = (
    "SELECT seq, 0, event_type, created_at, payload FROM outbox WHERE workspace_id = ? "
    "AND seq > (SELECT cursor_seq FROM currents_connectors WHERE id = ?) ORDER BY seq LIMIT ?"
)


class Delivery(Bound):
    """What a worker's round reads and writes."""

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
        stored = payloads(self._conn, [s for group in seqs.values() for s in group])
        return [
            Claim(
                batch_id=r.id,
                seqs=tuple(s for s in seqs[r.id] if s in stored),
                payloads=tuple(stored[s] for s in seqs[r.id] if s in stored),
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
        selected = rows if "*" in connector.events.patterns else select_events(connector.events, rows)
        columns = [tuple(zip(*group, strict=True)) for group in chunks(selected, connector.batch_size)]
        ids = insert_batches(
            self._conn,
            connector.id,
            [(seqs, min(created)) for seqs, _xid, _type, created, _payload in columns],
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
            Claim(batch_id, seqs, stored, 0, None)
            for batch_id, (seqs, _xid, _type, _created, stored) in zip(ids, columns, strict=True)
        ]

    def renew_leases(self, owner: str, *, now: float, lease_until: float) -> int:
        """Extend `owner`'s leases that have not run out; the number of batches renewed.

        The rows are locked in id order, the order in which a round settles its batches.
        """
        query = (
            select(batches.c.id)
            .where(batches.c.lease_owner == owner, batches.c.lease_until > now)
            .order_by(batches.c.id)
            .with_for_update()
        )
        ids = list(self._conn.execute(query).scalars())
        for chunk in chunks(ids, 5_000):
            self._conn.execute(update(batches).where(batches.c.id.in_(chunk)).values(lease_until=lease_until))
        return len(ids)

    def next_due_at(self, connector_id: str) -> float | None:
        """When the connector's earliest waiting or leased batch becomes due."""
        due = func.min(func.coalesce(batches.c.lease_until, batches.c.next_attempt_at))
        value = self._conn.execute(select(due).where(batches.c.connector_id == connector_id)).scalar_one()
        return None if value is None else float(value)

    def settle_batches(self, connector_id: str, resolutions: Sequence[Resolution], *, now: float) -> Tally:
        """Delete, reschedule, split or dead-letter the sent batches; count what was found."""
        delivered = delete_batches(self._conn, sorted(r.batch_id for r in resolutions if r.kind == "ack"))
        retried = dropped = 0
        for r in sorted(resolutions, key=lambda r: r.batch_id):  # one lock order for every worker
            if r.kind == "release":
                update_batch(self._conn, r.batch_id, next_attempt_at=r.next_attempt_at)
            elif r.kind in ("retry", "halt"):
                found = update_batch(
                    self._conn,
                    r.batch_id,
                    next_attempt_at=r.next_attempt_at,
                    attempts=r.attempts,
                    first_failure_at=r.first_failure_at,
                    last_status=r.status,
                    last_error=r.error,
                )
                retried += r.size if found else 0
            elif r.kind == "split":
                size, oldest, _seqs = delete_batch(self._conn, r.batch_id)
                if size:
                    insert_batches(
                        self._conn, connector_id, [(p, oldest) for p in r.parts], next_attempt_at=now
                    )
                retried += size
            elif r.kind == "drop":
                size, _oldest, seqs = delete_batch(self._conn, r.batch_id)
                dead_letter(self._conn, connector_id, seqs, r, now)
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

    def _after_cursor(self, connector_id: str, workspace_id: str, limit: int) -> list[Any]:
        """(seq, xid, event_type, created_at, payload) rows past the cursor, in cursor order.

        On PostgreSQL the connector row is locked first (FOR UPDATE) and the cursor read under
        that lock, so a claim that waited sees the cursor the previous claim committed.
        """
        raw = self._conn.connection.driver_connection  # this read is most of a round's work
        assert raw is not None
        if not self._pg:
            rows: list[Any] = raw.execute(
                _SQLITE_AFTER_CURSOR, (workspace_id, connector_id, limit)
            ).fetchall()
            return rows
        cursor = raw.execute(_PG_LOCK_CURSOR, {"cid": connector_id}).fetchone()
        if cursor is None:  # deleted since the round began
            return []
        cx, cs = cursor
        # Read in index order and stop at the limit: without this, a planner with stale statistics
        # (a backlog inserted since the last ANALYZE) reads every row past the cursor and sorts.
        raw.execute("SET LOCAL enable_sort = off")
        rows = raw.execute(_PG_AFTER_CURSOR, {"ws": workspace_id, "cx": cx, "cs": cs, "n": limit}).fetchall()
        raw.execute("RESET enable_sort")
        return rows


def select_events(events: EventSelection, rows: Sequence[Any]) -> list[Any]:
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
