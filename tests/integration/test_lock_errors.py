"""A statement that waits too long for a lock raises `ResourceLocked`, whatever repository ran it."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

from cohorthub.config import Settings
from cohorthub.errors import ResourceLocked
from cohorthub.store.db import create_db_engine


def test_a_lock_timeout_becomes_resource_locked(database_url: str) -> None:
    engine = create_db_engine(database_url, lock_timeout_seconds=0.2)
    holder = create_db_engine(Settings(database_url=database_url).database_url)
    try:
        with holder.connect() as held:
            held.begin()
            held.execute(text("INSERT INTO workspaces (id, name, created_at) VALUES ('w1', 'A', 0)"))
            # SQLite: BEGIN IMMEDIATE waits for the other writer; PostgreSQL: the row's unique key.
            with engine.connect() as waiter, pytest.raises(ResourceLocked):
                _insert_in_transaction(waiter)
            held.rollback()
    finally:
        engine.dispose()
        holder.dispose()


def _insert_in_transaction(conn: Connection) -> None:
    conn.begin()
    conn.execute(text("INSERT INTO workspaces (id, name, created_at) VALUES ('w1', 'B', 0)"))


def test_other_database_errors_pass_through(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as conn, pytest.raises(Exception, match="no_such_table") as info:
            conn.execute(text("SELECT * FROM no_such_table"))
        assert not isinstance(info.value, ResourceLocked)
    finally:
        engine.dispose()
