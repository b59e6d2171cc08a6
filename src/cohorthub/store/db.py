"""Engines for the two supported stores, chosen by URL.

SQLite runs in WAL mode with `synchronous=FULL`, so a commit is on disk before the
server answers 2xx; write transactions start with `BEGIN IMMEDIATE` so that two writers
queue on the database lock instead of failing half-way. PostgreSQL runs through
psycopg 3 at READ COMMITTED; cohort writers serialize on the cohort row lock; every execution
is planned with its parameters (`plan_cache_mode=force_custom_plan`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import set_json_loads
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError
from sqlalchemy.pool import QueuePool

from cohorthub.errors import DeadlockVictim, ResourceLocked
from cohorthub.store.errors import SUPPORTED_URLS, DatabaseMissing, DatabaseUnavailable, InvalidDatabaseUrl
from cohorthub.store.priority import READS

#: PostgreSQL SQLSTATEs of a lock that could not be had: lock_timeout expired, deadlock detected.
_PG_LOCK_ERRORS = {"55P03", "40P01"}
_PG_DEADLOCK = "40P01"


def normalize_url(url: str) -> str:
    """Map `postgres://`/`postgresql://` to the psycopg 3 driver; keep others."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def parse_url(url: str) -> URL:
    """The parsed URL of a supported database; `InvalidDatabaseUrl` (one line) otherwise."""
    try:
        parsed = make_url(normalize_url(url))
    except (ArgumentError, ValueError) as exc:
        raise InvalidDatabaseUrl(f"Not a database URL: {url!r} ({SUPPORTED_URLS})") from exc
    if parsed.get_backend_name() not in {"sqlite", "postgresql"} or parsed.drivername not in {
        "sqlite",
        "postgresql+psycopg",
    }:
        shown = parsed.render_as_string(hide_password=True)
        raise InvalidDatabaseUrl(f"Unsupported database URL: {shown!r} ({SUPPORTED_URLS})")
    if parsed.get_backend_name() == "sqlite" and not parsed.database:
        raise InvalidDatabaseUrl(f"A SQLite URL needs a file path: {url!r} ({SUPPORTED_URLS})")
    return parsed


def sqlite_path(url: str) -> Path | None:
    """The absolute file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, ":memory:"):
        return None
    return Path(str(parsed.database)).resolve()


def describe_url(url: str) -> str:
    """The database as a user should read it: an absolute SQLite path, or the URL without password."""
    path = sqlite_path(url)
    if path is not None:
        return f"sqlite:///{path}"
    shown = parse_url(url).render_as_string(hide_password=True)
    return shown.replace("postgresql+psycopg://", "postgresql://", 1)


def is_sqlite(url: str) -> bool:
    """True for the embedded store."""
    return make_url(normalize_url(url)).get_backend_name() == "sqlite"


def open_db_engine(url: str, *, lock_timeout_seconds: float = 5.0, create: bool = True) -> Engine:
    """An engine whose database answers; without `create`, a missing SQLite file is an error.

    Every failure is one line: `InvalidDatabaseUrl`, `DatabaseMissing` or `DatabaseUnavailable`.
    """
    path = sqlite_path(url)
    if path is not None and not create and not path.exists():
        raise DatabaseMissing(
            f"No cohorthub database at {path}. Point at the server's database with "
            "--database sqlite:////ABSOLUTE/PATH or COHORTHUB_DATABASE_URL (a relative path starts "
            "at the current directory), or create a new one with `cohorthub init`"
        )
    engine = create_db_engine(url, lock_timeout_seconds=lock_timeout_seconds)
    try:
        engine.connect().close()
    except DBAPIError as exc:
        engine.dispose()
        reason = _first_line(exc)
        if "does not exist" in reason:
            reason += " (create it, e.g. `createdb`, or name another database)"
        raise DatabaseUnavailable(f"Cannot open {describe_url(url)}: {reason}") from exc
    return engine


def _first_line(exc: DBAPIError) -> str:
    text = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
    return " ".join(text.removeprefix("connection failed: ").split())


def create_db_engine(url: str, *, lock_timeout_seconds: float = 5.0) -> Engine:
    """Create the engine for `url`, with the pragmas and pool the store needs."""
    parse_url(url)
    url = normalize_url(url)
    engine = (
        _sqlite_engine(url, lock_timeout_seconds) if is_sqlite(url) else _pg_engine(url, lock_timeout_seconds)
    )
    event.listen(engine, "handle_error", _translate_lock_errors)
    event.listen(engine, "before_cursor_execute", _yield_to_readers)
    return engine


def _yield_to_readers(*_: object) -> None:
    """Before each statement: let interactive reads in flight go first (`store/priority.py`)."""
    READS.yield_to_readers()


def _lock_error(orig: BaseException) -> Exception | None:
    """The store's error for a driver error that is a lock not had (None for any other)."""
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate == _PG_DEADLOCK:
        return DeadlockVictim()
    if sqlstate in _PG_LOCK_ERRORS or (isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)):
        return ResourceLocked()
    return None


def _translate_lock_errors(context: ExceptionContext) -> None:
    """Every statement that waited too long for a lock raises `ResourceLocked` (423 at the edge)."""
    error = _lock_error(context.original_exception)
    if error is not None:
        raise error from context.sqlalchemy_exception


def driver_error(exc: psycopg.Error, statement: str) -> Exception:
    """What a statement run on the driver's connection directly (a `COPY`) raises for `exc`.

    The same as through SQLAlchemy: `DeadlockVictim` and `ResourceLocked` for locks, else
    SQLAlchemy's own exception class (`IntegrityError`, `DataError`, …) wrapping the driver's.
    """
    return _lock_error(exc) or DBAPIError.instance(statement, None, exc, psycopg.Error)


#: A pooled PostgreSQL connection idle longer than this (seconds) is checked with a round trip before
#: it is used, and replaced if the server dropped it (a restart, an idle timeout). One in steady use is
#: not: a check on every checkout cost a round trip per request.
PING_AFTER_IDLE = 2.0
_IDLE_SINCE = "cohorthub.idle_since"


def json_loads(data: str | bytes) -> Any:
    """JSON from the database as Python: msgspec (several times faster than `json` on large aggregates)."""
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:  # beyond what msgspec reads (NaN written long ago, a number too large)
        return json.loads(data)


def _pg_engine(url: str, lock_timeout_seconds: float) -> Engine:
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=8,
        max_overflow=8,
        # Custom plans for every execution: psycopg prepares a statement run five times, and a
        # generic plan chosen while a table was small (a sequential scan) would otherwise stay
        # until the next ANALYZE, which nothing guarantees (autovacuum may be off or late).
        connect_args={
            "options": f"-c lock_timeout={int(lock_timeout_seconds * 1000)} "
            "-c plan_cache_mode=force_custom_plan"
        },
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        set_json_loads(json_loads, dbapi_connection)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return  # new, or back in the pool a moment ago: in use, not gone
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure: the pool replaces the connection
            raise DisconnectionError("a pooled connection is gone") from exc

    return engine


def _sqlite_engine(url: str, lock_timeout_seconds: float) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=4,
        max_overflow=4,
        pool_use_lifo=True,  # the connection used last comes back first: its page cache is the warmest
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
