"""Engines for the two supported stores, chosen by URL.

SQLite runs in WAL mode with `synchronous=FULL`, so a commit is on disk before the
server answers 2xx; write transactions start with `BEGIN IMMEDIATE` so that two writers
queue on the database lock instead of failing half-way. PostgreSQL runs through
psycopg 3 at READ COMMITTED; cohort writers serialize on the cohort row lock; every execution
is planned with its parameters (`plan_cache_mode=force_custom_plan`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.pool import QueuePool

from cohorthub.errors import ResourceLocked

#: PostgreSQL SQLSTATEs of a lock that could not be had: lock_timeout expired, deadlock detected.
_PG_LOCK_ERRORS = {"55P03", "40P01"}


def normalize_url(url: str) -> str:
    """Map `postgres://`/`postgresql://` to the psycopg 3 driver; keep others."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(url: str) -> bool:
    """True for the embedded store."""
    return make_url(normalize_url(url)).get_backend_name() == "sqlite"


def create_db_engine(url: str, *, lock_timeout_seconds: float = 5.0) -> Engine:
    """Create the engine for `url`, with the pragmas and pool the store needs."""
    url = normalize_url(url)
    engine = (
        _sqlite_engine(url, lock_timeout_seconds) if is_sqlite(url) else _pg_engine(url, lock_timeout_seconds)
    )
    event.listen(engine, "handle_error", _translate_lock_errors)
    return engine


def _translate_lock_errors(context: ExceptionContext) -> None:
    """Every statement that waited too long for a lock raises `ResourceLocked` (423 at the edge)."""
    orig = context.original_exception
    if getattr(orig, "sqlstate", None) in _PG_LOCK_ERRORS or (
        isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)
    ):
        raise ResourceLocked() from context.sqlalchemy_exception


def _pg_engine(url: str, lock_timeout_seconds: float) -> Engine:
    return create_engine(
        url,
        poolclass=QueuePool,
        pool_size=8,
        max_overflow=8,
        pool_pre_ping=True,
        # Custom plans for every execution: psycopg prepares a statement run five times, and a
        # generic plan chosen while a table was small (a sequential scan) would otherwise stay
        # until the next ANALYZE, which nothing guarantees (autovacuum may be off or late).
        connect_args={
            "options": f"-c lock_timeout={int(lock_timeout_seconds * 1000)} "
            "-c plan_cache_mode=force_custom_plan"
        },
    )


def _sqlite_engine(url: str, lock_timeout_seconds: float) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=4,
        max_overflow=4,
        connect_args={"check_same_thread": False, "timeout": lock_timeout_seconds},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout_seconds * 1000)}")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
