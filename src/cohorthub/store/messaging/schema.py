"""The messaging tables (the 0008_messaging migration creates them) and dialect helpers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import postgresql, sqlite

_meta = MetaData()
_Id = BigInteger().with_variant(Integer(), "sqlite")

programs = Table(
    "msg_programs",
    _meta,
    Column("id", String(36), primary_key=True),
    Column("workspace_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("spec", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("first_sent_at", Float),
    Column("last_sent_at", Float),
)

sends = Table(
    "msg_sends",
    _meta,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("workspace_id", String(32), nullable=False),
    Column("program_id", String(36), nullable=False),
    Column("step_id", String(64), nullable=False),
    Column("user_num", BigInteger, nullable=False),
    Column("dispatch_id", String(64), nullable=False),
    Column("send_id", String(64)),
    Column("channel", String(16), nullable=False),
    Column("address", Text),
    Column("state", String(16), nullable=False),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("opened_at", Float),
    Column("clicked_at", Float),
    Column("unsubscribed_at", Float),
    Column("converted_at", Float),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)

jobs = Table(
    "msg_jobs",
    _meta,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("workspace_id", String(32), nullable=False),
    Column("program_id", String(36), nullable=False),
    Column("dispatch_id", String(64), nullable=False),
    Column("send_id", String(64)),
    Column("due_at", Float, nullable=False),
    Column("state", String(16), nullable=False),
    Column("owner", String(64)),
    Column("lease_until", Float),
    Column("payload", Text, nullable=False),
    Column("idem_key", String(96)),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("targeted", Integer),
    Column("note", Text),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)

entries = Table(
    "msg_entries",
    _meta,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("workspace_id", String(32), nullable=False),
    Column("canvas_id", String(36), nullable=False),
    Column("user_num", BigInteger, nullable=False),
    Column("trigger_key", String(96), nullable=False),
    Column("step_id", String(64)),
    Column("step_since", Float, nullable=False),
    Column("waiting", Boolean, nullable=False),
    Column("next_at", Float),
    Column("state", String(16), nullable=False),
    Column("owner", String(64)),
    Column("lease_until", Float),
    Column("properties", Text, nullable=False),
    Column("entered_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("converted_at", Float),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)

cursors = Table(
    "msg_cursors",
    _meta,
    Column("name", String(128), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

rates = Table(
    "msg_rates",
    _meta,
    Column("program_id", String(36), primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
)

settings = Table(
    "msg_settings",
    _meta,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

suppressions = Table(
    "msg_suppressions",
    _meta,
    Column("workspace_id", String(32), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("send_row_id", BigInteger),
    Column("created_at", Float, nullable=False),
)


def insert_for(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT (with `on_conflict_do_nothing`)."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)
