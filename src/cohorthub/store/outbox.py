"""The outbox: events written in the same transaction as the change that caused them."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from sqlalchemy import Connection, insert

from cohorthub.currents.envelope import Envelope
from cohorthub.store.tables import outbox

_encoder = msgspec.json.Encoder()


class SqlOutbox:
    """Append-only event log in SQL; Currents delivery reads it."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def append(self, workspace_id: str, events: Iterable[Envelope], *, now: float) -> int:
        """Record events for delivery; return how many."""
        rows = [
            {
                "workspace_id": workspace_id,
                "event_id": e.id,
                "event_type": e.event_type,
                "time": e.time,
                "payload": _encoder.encode(e),
                "created_at": now,
            }
            for e in events
        ]
        if rows:
            self._conn.execute(insert(outbox), rows)
        return len(rows)
