"""Dead letters, and replays: queue events again (the same ids) as new batches."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert, select, text

from cohorthub.currents.model import Connector
from cohorthub.currents.ports import Resolution
from cohorthub.store.currents.rows import insert_batches
from cohorthub.store.currents.schema import Bound, chunks, connectors, dead_letters
from cohorthub.store.tables import outbox


def dead_letter(conn: Connection, connector_id: str, seqs: Sequence[int], r: Resolution, now: float) -> None:
    """Record each still stored event of a dropped batch as a dead letter of the connector."""
    for chunk in chunks(list(seqs), 5_000):
        rows = conn.execute(select(outbox.c.seq, outbox.c.event_id).where(outbox.c.seq.in_(chunk))).all()
        if rows:
            conn.execute(
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


class Replays(Bound):
    """Queue delivered or dropped events again."""

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
        groups = [([r[0] for r in g], min(r[2] for r in g)) for g in chunks(rows, connector.batch_size)]
        insert_batches(self._conn, connector.id, groups, next_attempt_at=now)
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
        groups = [([r[0] for r in g], min(r[1] for r in g)) for g in chunks(rows, connector.batch_size)]
        insert_batches(self._conn, connector.id, groups, next_attempt_at=now)
        self._conn.execute(delete(dead_letters).where(dead_letters.c.connector_id == connector.id))
        return len(rows)
