"""Many rows into one PostgreSQL table per statement, each column one array parameter.

`INSERT … SELECT * FROM unnest(%b::text[], %b::bigint[], …)`: the statement text is the same
whatever the number of rows, so the driver converts and caches it once and the server plans a
handful of parameters. A multi-row `VALUES` list of 75 users (1,275 placeholders) was re-split by
the driver on every request (its query cache skips long statements), and an executemany is a
round of driver work per row. Arrays are cast to the base type (`text[]`, never `varchar(n)[]`,
whose explicit cast would truncate silently): the insert's own assignment still checks lengths.
The arrays travel in binary (`%b`): psycopg's text form quotes and escapes every element with a
regular expression, ~2 µs an element (3.3 ms of client CPU for a request's 75 users, 0.4 in binary).

Thousands of rows that only need inserting (a bulk import's new users) go by `COPY` instead
(`copy_rows`): psycopg dumps array parameters element by element in Python, its COPY writer
formats rows in C (a bulk import of new users: 11,359–12,334 users/s with arrays, 12,374–14,282
by COPY, alternating runs of `bench/users_import.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from sqlalchemy import BigInteger, Boolean, Connection, Float, Integer, LargeBinary, String, Table

from cohorthub.store.db import driver_error
from cohorthub.store.priority import READS

_Convert = Callable[[Any], Any]


def _array_type(table: Table, name: str) -> tuple[str, _Convert | None]:
    """The column's array type, and how a value is made uniform for it (psycopg dumps lists of one type)."""
    kind = table.c[name].type
    if isinstance(kind, Boolean):
        return "boolean[]", bool
    if isinstance(kind, (BigInteger, Integer)):
        return "bigint[]", int
    if isinstance(kind, Float):
        return "float8[]", float
    if isinstance(kind, LargeBinary):
        return "bytea[]", None
    if isinstance(kind, String):  # Text is a String
        return "text[]", None
    raise TypeError(f"{table.name}.{name}: no array type for {kind!r}")


def insert_sql(table: Table, names: Sequence[str], returning: str = "") -> str:
    """The statement: one array parameter per column of `names`."""
    arrays = ", ".join(f"%b::{_array_type(table, n)[0]}" for n in names)
    tail = f" RETURNING {returning}" if returning else ""
    return f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays}){tail}"


def copy_rows(conn: Connection, table: Table, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert `rows` (values in the order of `names`) with `COPY … FROM STDIN`, in the open transaction.

    Constraints and triggers apply as for an INSERT; a violated one fails the whole statement with
    the exception SQLAlchemy would raise (a lock not had: `DeadlockVictim`, `ResourceLocked`).
    """
    if not rows:
        return
    READS.yield_to_readers()  # as before every statement that goes through SQLAlchemy
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    try:
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as exc:  # not seen by the engine's error handling: translated the same way
        raise driver_error(exc, sql) from exc


def columns(table: Table, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The rows (values in the order of `names`) as one list per column."""
    out: list[list[Any]] = []
    for i, name in enumerate(names):
        convert = _array_type(table, name)[1]
        values = [row[i] for row in rows]
        if convert is not None:
            values = [v if v is None else convert(v) for v in values]
        out.append(values)
    return out


def insert_arrays(
    conn: Connection, table: Table, names: Sequence[str], rows: Sequence[Sequence[Any]], returning: str = ""
) -> list[Any]:
    """Insert `rows` (values in the order of `names`) in one statement; the `returning` rows."""
    if not rows:
        return []
    result = conn.exec_driver_sql(insert_sql(table, names, returning), tuple(columns(table, names, rows)))
    return list(result.all()) if returning else []


def update_arrays(
    conn: Connection, table: Table, key: str, names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Set `names` of the rows whose `key` is each row's last value, in one statement.

    Each key must appear once (`UPDATE … FROM` applies one source row per target row).
    """
    if not rows:
        return
    every = [*names, key]
    arrays = ", ".join(f"%b::{_array_type(table, n)[0]}" for n in every)
    sets = ", ".join(f"{n} = v.{n}" for n in names)
    sql = (
        f"UPDATE {table.name} SET {sets} FROM unnest({arrays}) AS v({', '.join(every)}) "
        f"WHERE {table.name}.{key} = v.{key}"
    )
    conn.exec_driver_sql(sql, tuple(columns(table, every, rows)))
