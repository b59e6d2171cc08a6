"""Outbox retention: delete old events that no connector still needs, one bounded chunk at a time.

An outbox row may go when it is older than the cutoff, every connector of its workspace has
moved its cursor past it (on PostgreSQL the cursor is `(xid, seq)`), no batch of any connector
(queued, leased, in flight, or a replay) still holds it, and no dead letter points at it (a dead
letter keeps its event until it is replayed or its connector is deleted).

On PostgreSQL a deleting chunk first takes `SHARE` on `currents_batches`: batches and dead letters
are only written by transactions that also write that table, so none can appear between the
chunk's read of what is held and its delete. The lock lasts one short transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, text

from cohorthub.currents.ports import PruneChunk
from cohorthub.store.currents.schema import Bound, batches, connectors, dead_letters, unpack_seqs
from cohorthub.store.tables import outbox, workspaces


class Retention(Bound):
    """What outbox retention reads and deletes."""

    def workspace_ids(self) -> list[str]:
        """Every workspace id, in a stable order."""
        return list(self._conn.execute(select(workspaces.c.id).order_by(workspaces.c.id)).scalars())

    def prune_outbox_chunk(
        self, workspace_id: str, *, before: float, after_seq: int, limit: int, dry_run: bool
    ) -> PruneChunk:
        """Examine up to `limit` of the workspace's outbox rows past `after_seq` (in `seq` order)
        and delete those no connector needs and recorded before `before` (count them on a dry run).

        The walk is done at the first row that is too recent or not past every cursor: rows after
        it are newer (on PostgreSQL a few may be past the cursors; a later run takes them).
        """
        if self._pg and not dry_run:
            self._conn.execute(text("LOCK TABLE currents_batches IN SHARE MODE"))
        cursors = self._conn.execute(
            select(connectors.c.cursor_xid, connectors.c.cursor_seq).where(
                connectors.c.workspace_id == workspace_id
            )
        ).all()
        horizon = min((int(x), int(s)) for x, s in cursors) if cursors else None
        xid: Any = text("outbox.xid::text::bigint") if self._pg else text("0")
        rows = self._conn.execute(
            select(outbox.c.seq, xid, outbox.c.created_at)
            .where(outbox.c.workspace_id == workspace_id, outbox.c.seq > after_seq)
            .order_by(outbox.c.seq)
            .limit(limit)
        ).all()
        held = self._held_by_batches(workspace_id, before)
        candidates: list[int] = []
        last = after_seq
        done = len(rows) < limit
        for seq, row_xid, created_at in rows:
            if created_at >= before or (horizon is not None and self._after(row_xid, seq, horizon)):
                done = True
                break
            last = seq
            if seq not in held:
                candidates.append(seq)
        if candidates:
            lettered = set(
                self._conn.execute(
                    select(dead_letters.c.seq).where(dead_letters.c.seq.in_(candidates))
                ).scalars()
            )
            candidates = [s for s in candidates if s not in lettered]
        if candidates and not dry_run:
            self._conn.execute(delete(outbox).where(outbox.c.seq.in_(candidates)))
        return PruneChunk(removed=len(candidates), last_seq=last, done=done)

    def _after(self, row_xid: int, seq: int, horizon: tuple[int, int]) -> bool:
        """Whether the row is past the earliest cursor (not yet claimed by some connector)."""
        return (row_xid, seq) > horizon if self._pg else seq > horizon[1]

    def _held_by_batches(self, workspace_id: str, before: float) -> set[int]:
        """Outbox positions in the workspace's batches that hold an event recorded before `before`
        (a batch's `oldest_at` is never later than its oldest event)."""
        query = (
            select(batches.c.seqs)
            .join(connectors, connectors.c.id == batches.c.connector_id)
            .where(connectors.c.workspace_id == workspace_id, batches.c.oldest_at < before)
        )
        return {s for (packed,) in self._conn.execute(query) for s in unpack_seqs(packed)}
