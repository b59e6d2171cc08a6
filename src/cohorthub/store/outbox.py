"""The outbox: events written in the same transaction as the change that caused them."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from sqlalchemy import Connection

from cohorthub.currents.envelope import Envelope
from cohorthub.store.rows import insert_many
from cohorthub.store.tables import outbox

_encoder = msgspec.json.Encoder()
_COLUMNS = ("workspace_id", "event_id", "event_type", "time", "payload", "created_at")
_INSERT = f"INSERT INTO {outbox.name} ({', '.join(_COLUMNS)}) VALUES (%s, %s, %s, %s, %s, %s)"
#: PostgreSQL: one statement with array parameters, whatever the number of events (an executemany
#: costs a round of driver work per row).
_INSERT_PG = (
    f"INSERT INTO {outbox.name} (workspace_id, event_id, event_type, time, payload, created_at) "
    "SELECT %s, e, t, tm, p, %s FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::bytea[]) "
    "AS x(e, t, tm, p)"
)


class SqlOutbox:
    """Append-only event log in SQL; Currents delivery reads it."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def append(self, workspace_id: str, events: Iterable[Envelope], *, now: float) -> int:
        """Record events for delivery; return how many."""
        rows = [(workspace_id, e.id, e.event_type, e.time, _encoder.encode(e), now) for e in events]
        if len(rows) > 1 and self._conn.dialect.name == "postgresql":
            columns = [list(c) for c in zip(*((r[1], r[2], r[3], r[4]) for r in rows), strict=True)]
            self._conn.exec_driver_sql(_INSERT_PG, (workspace_id, now, *columns))
        elif rows and self._conn.dialect.name == "postgresql":
            self._conn.exec_driver_sql(_INSERT, rows)
        elif rows:
            insert_many(self._conn, outbox.name, _COLUMNS, rows)
        return len(rows)
