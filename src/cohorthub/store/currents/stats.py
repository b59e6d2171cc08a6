"""A connector's statistics: queue sizes, counters, oldest undelivered event, last error."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from cohorthub.currents.model import Connector, ConnectorState, ConnectorStats
from cohorthub.store.currents.schema import Bound, batches, connectors, dead_letters, like


class Stats(Bound):
    """Read-only statistics."""

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

    def _count_after_cursor(self, connector: Connector, cx: int, cs: int) -> tuple[int, float | None]:
        if self._pg:
            match = " OR ".join(f"event_type LIKE :p{i}" for i in range(len(connector.events.patterns)))
            where = "workspace_id = :ws AND (xid, seq) > (CAST(CAST(:cx AS text) AS xid8), :cs)"
        else:
            match = " OR ".join(f"event_type GLOB :p{i}" for i in range(len(connector.events.patterns)))
            where = "workspace_id = :ws AND seq > :cs"
        params: dict[str, Any] = {"ws": connector.workspace_id, "cx": cx, "cs": cs}
        for i, pattern in enumerate(connector.events.patterns):
            params[f"p{i}"] = like(pattern) if self._pg else pattern
        sql = f"SELECT count(*), min(created_at) FROM outbox WHERE {where} AND ({match})"
        row = self._conn.execute(text(sql), params).one()
        return int(row[0]), row[1]
