"""PostgreSQL: a pooled connection the server dropped while it sat idle is replaced, not handed out."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text

from cohorthub.store import db
from cohorthub.store.db import create_db_engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    if not database_url.startswith("postgresql"):
        pytest.skip("a server that drops connections: PostgreSQL's")
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


def _backend(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _drop(engine: Engine, pid: int) -> None:
    """Terminate one server backend from a connection outside the pool."""
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    other = psycopg.connect(url, autocommit=True)
    try:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        other.close()


def test_an_idle_connection_dropped_by_the_server_is_replaced(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = _backend(engine)  # the pool now holds this connection, idle
    _drop(engine, pid)
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)  # it has been idle long enough to be checked
    assert _backend(engine) != pid  # a new connection answered; no error reached the caller


def test_a_connection_in_steady_use_is_not_checked(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 3600.0)
    pings: list[object] = []
    real = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(c) or real(c))
    for _ in range(5):
        _backend(engine)
    assert pings == []
