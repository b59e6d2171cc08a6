"""PostgreSQL rows written as column arrays or by COPY: values, NULLs and checks as a row-by-row insert."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError

from cohorthub.bootstrap import Container
from cohorthub.errors import ResourceLocked
from cohorthub.store.pg_rows import copy_rows, insert_arrays, update_arrays
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


_COPIED = [
    "workspace_id",
    "braze_id",
    "external_id",
    "first_name",
    "custom_attributes",
    "created_at",
    "updated_at",
]


def test_copied_rows_come_back_exactly_whatever_their_characters(pg: Container) -> None:
    # COPY's text format escapes tabs, newlines and backslashes; a NULL is not the text "\N".
    awkward = ["tab\there", "line\nbreak\r\n", "back\\slash \\N", "\\N", "ñandú 🦤", "'quote\" ", ""]
    rows = [
        ("w", f"{i:024x}", text, None if i % 2 else text, '{"k": "\\t\\n"}', 1.5, 1e15 + i)
        for i, text in enumerate(awkward)
    ]
    with pg.engine.begin() as conn:
        copy_rows(conn, users, _COPIED, rows)
        got = conn.execute(select(*(users.c[n] for n in _COPIED)).order_by(users.c.braze_id)).all()
    assert [tuple(r) for r in got] == rows


def test_a_copied_row_that_breaks_a_constraint_writes_none_of_them(pg: Container) -> None:
    rows = [("w", f"{i:024x}", "same-id", None, "{}", 1.0, 1.0) for i in range(2)]
    with pytest.raises(IntegrityError), pg.engine.begin() as conn:
        copy_rows(conn, users, _COPIED, rows)
    with pg.engine.connect() as conn:
        assert conn.execute(select(users.c.num)).all() == []
    too_long = [("w", "c" * 24, "x" * 513, None, "{}", 1.0, 1.0)]
    with pytest.raises(DataError), pg.engine.begin() as conn:
        copy_rows(conn, users, _COPIED, too_long)


def test_a_copy_that_waits_too_long_for_a_lock_is_resource_locked(pg: Container) -> None:
    row = ("w", "d" * 24, "held", None, "{}", 1.0, 1.0)
    with pg.engine.connect() as holder:
        holder.execute(users.insert().values(dict(zip(_COPIED, ("w", "e" * 24, *row[2:]), strict=True))))
        with pg.engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
            with pytest.raises(ResourceLocked):
                copy_rows(conn, users, _COPIED, [row])  # waits on the holder's uncommitted "held"
            conn.rollback()
        holder.rollback()
    with pg.engine.begin() as conn:  # the connection went back to the pool usable
        copy_rows(conn, users, _COPIED, [row])
        assert conn.execute(select(users.c.braze_id)).scalars().all() == ["d" * 24]
