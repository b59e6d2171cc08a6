"""Batch rows: insert, delete, reschedule; and the payloads their outbox positions point at."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from cohorthub.store.currents.schema import batches, chunks, pack_seqs, unpack_seqs
from cohorthub.store.tables import outbox


def insert_batches(
    conn: Connection,
    connector_id: str,
    groups: Sequence[tuple[Sequence[int], float]],
    *,
    next_attempt_at: float,
    owner: str | None = None,
    lease_until: float | None = None,
) -> list[int]:
    """Insert batches of outbox positions with their oldest event time; their ids, in order."""
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
    result = conn.execute(insert(batches).returning(batches.c.id, sort_by_parameter_order=True), rows)
    return [int(r[0]) for r in result]


def delete_batches(conn: Connection, ids: Sequence[int]) -> int:
    """Delete batches; the number of events they held."""
    deleted = 0
    for chunk in chunks(ids, 5_000):
        query = delete(batches).where(batches.c.id.in_(chunk)).returning(batches.c.size)
        deleted += sum(conn.execute(query).scalars())
    return deleted


def delete_batch(conn: Connection, batch_id: int) -> tuple[int, float, tuple[int, ...]]:
    """Delete a batch; (size, oldest_at, seqs), or (0, 0.0, ()) when it was already gone."""
    query = delete(batches).where(batches.c.id == batch_id)
    row = conn.execute(query.returning(batches.c.size, batches.c.oldest_at, batches.c.seqs)).first()
    return (0, 0.0, ()) if row is None else (row[0], row[1], unpack_seqs(row[2]))


def update_batch(conn: Connection, batch_id: int, **values: Any) -> bool:
    """Reschedule a batch and end its lease; False when it is gone."""
    query = update(batches).where(batches.c.id == batch_id)
    return conn.execute(query.values(lease_owner=None, lease_until=None, **values)).rowcount > 0


def payloads(conn: Connection, seqs: list[int]) -> dict[int, bytes]:
    """The stored JSON of each outbox position that still exists."""
    out: dict[int, bytes] = {}
    for chunk in chunks(seqs, 5_000):
        query = select(outbox.c.seq, outbox.c.payload).where(outbox.c.seq.in_(chunk))
        out.update((seq, bytes(payload)) for seq, payload in conn.execute(query))
    return out
