"""Many rows into one SQLite table per statement.

On SQLite one multi-row `INSERT … VALUES (…), (…)` binds and runs about twice as fast as an
executemany of the same rows (one statement step instead of one per row); a statement holds at
most `ROWS_PER_STATEMENT` rows so that it stays under SQLite's 32,766 parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

ROWS_PER_STATEMENT = 500


def insert_many(conn: Connection, table: str, names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert `rows` (values in the order of `names`) into `table` on SQLite."""
    marks = f"({', '.join('?' * len(names))})"
    head = f"INSERT INTO {table} ({', '.join(names)}) VALUES "
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        conn.exec_driver_sql(head + ", ".join([marks] * len(chunk)), tuple(v for row in chunk for v in row))
