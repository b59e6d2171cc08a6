"""The Currents tables, the packing of a batch's outbox positions, shared helpers.

A connector's cursor marks the outbox position up to which events have been put into
batches. On SQLite writers are serialized, so `seq` commits in order and the cursor is a
`seq`. On PostgreSQL a later `seq` can commit first; there the cursor is `(xid, seq)` and
only rows whose transaction is older than every running one (`pg_snapshot_xmin`) are read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
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
)

from cohorthub.config import Secret
from cohorthub.currents.model import Connector, EventSelection

_meta = MetaData()  # the migration creates these tables; this metadata only describes them
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
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
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
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)

PG_XMIN = "pg_snapshot_xmin(pg_current_snapshot())"


class Bound:
    """A repository part bound to the unit of work's connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._pg = conn.dialect.name == "postgresql"


def pack_seqs(seqs: Sequence[int]) -> bytes:
    """Outbox positions as little-endian int64s."""
    return struct.pack(f"<{len(seqs)}q", *seqs)


def unpack_seqs(data: bytes) -> tuple[int, ...]:
    """The inverse of `pack_seqs`."""
    return struct.unpack(f"<{len(data) // 8}q", data)


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def like(pattern: str) -> str:
    """A `*`/`?` glob as a SQL LIKE pattern (escape character `\\`)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def connector_from_row(row: Any) -> Connector:
    """A connector from its row."""
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
