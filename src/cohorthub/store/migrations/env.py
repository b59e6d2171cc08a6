"""Alembic environment: the engine comes from `cohorthub.store.migrate`."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine

engine = context.config.attributes["engine"]
assert isinstance(engine, Engine)

SQLITE = engine.dialect.name == "sqlite"


def _sqlite_pragma(connection: Connection, pragma: str) -> list[Any]:
    """Run a pragma on the driver connection (outside any transaction SQLAlchemy would begin)."""
    driver = connection.connection.driver_connection
    assert driver is not None
    return list(driver.execute(f"PRAGMA {pragma}").fetchall())


with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection:
    # SQLite table rebuilds (create, copy, drop, rename) must not fire ON DELETE CASCADE when the
    # old table is dropped: foreign keys are off for the run and checked before the commit.
    if SQLITE:
        _sqlite_pragma(connection, "foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            render_as_batch=SQLITE,
            target_metadata=context.config.attributes.get("target_metadata"),
        )
        with context.begin_transaction():
            before = set(context.get_context().get_current_heads())
            context.run_migrations()
            # A full check reads every referencing row: only after a run that migrated something.
            migrated = set(context.get_context().get_current_heads()) != before
            if SQLITE and migrated and (violations := _sqlite_pragma(connection, "foreign_key_check")):
                raise RuntimeError(f"migration left foreign key violations: {violations[:10]}")
        connection.commit()
    finally:
        if SQLITE:
            _sqlite_pragma(connection, "foreign_keys=ON")
