"""Alembic environment: the engine comes from `cohorthub.store.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

engine = context.config.attributes["engine"]
assert isinstance(engine, Engine)

with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection:
    context.configure(
        connection=connection,
        render_as_batch=engine.dialect.name == "sqlite",
        target_metadata=context.config.attributes.get("target_metadata"),
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
