"""PostgreSQL rows written as column arrays: values, NULLs and length checks as a row-by-row insert."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DataError

from cohorthub.bootstrap import Container
from cohorthub.store.pg_rows import insert_arrays, update_arrays
from cohorthub.store.tables import purchases, users, workspaces


@pytest.fixture
def pg(container: Container) -> Container:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("column arrays are PostgreSQL's")
    with container.engine.begin() as conn:
        conn.execute(workspaces.insert().values(id="w", name="W", created_at=0))
    return container


def test_rows_go_in_as_written_and_updates_by_key(pg: Container) -> None:
    names = [
        "workspace_id",
        "braze_id",
        "external_id",
        "email",
        "custom_attributes",
        "created_at",
        "updated_at",
    ]
    rows = [("w", "a" * 24, "x-1", None, "{}", 1, 2.5), ("w", "b" * 24, None, "é@example.com", "{}", 3.0, 4)]
    with pg.engine.begin() as conn:
        back = dict(insert_arrays(conn, users, names, rows, returning="braze_id, num"))
        assert set(back) == {"a" * 24, "b" * 24}
        update_arrays(
            conn,
            users,
            "num",
            ["email", "updated_at"],
            [(None, 7, back["b" * 24]), ("n@x", 8.5, back["a" * 24])],
        )
        got = conn.execute(
            select(
                users.c.braze_id, users.c.external_id, users.c.email, users.c.created_at, users.c.updated_at
            ).order_by(users.c.braze_id)
        ).all()
    assert [tuple(r) for r in got] == [("a" * 24, "x-1", "n@x", 1.0, 8.5), ("b" * 24, None, None, 3.0, 7.0)]


def test_a_value_too_long_fails_rather_than_being_cut(pg: Container) -> None:
    # An explicit cast to varchar(3)[] would truncate; the arrays are text[] and the insert checks.
    row = ("w", 1, "p", "EURO", 1.0, 1, 0.0, "{}", None)
    names = [
        "workspace_id",
        "user_num",
        "product_id",
        "currency",
        "price",
        "quantity",
        "time",
        "properties",
        "app_id",
    ]
    with pytest.raises(DataError), pg.engine.begin() as conn:
        insert_arrays(conn, purchases, names, [row])
