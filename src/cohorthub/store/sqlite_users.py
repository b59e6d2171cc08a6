"""SQLite: users rows written with only the columns that carry something.

An `UPDATE` names only the columns whose value changed since the row was loaded (plus
`updated_at` and the change stamp): SQLite rewrites every index on a column named in `SET`
(external id, e-mail, phone) even when its value is the same, and binds every value named. An
`INSERT` leaves out the columns no new row sets (they default to NULL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

#: Rows per statement (SQLite allows 32,766 parameters a statement).
ROWS_PER_STATEMENT = 500


def insert_users(
    conn: Connection,
    names: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    optional: Sequence[int],
) -> dict[str, int]:
    """Insert `rows` (values in the order of `names`); the stored number of each by braze id.

    Columns at the positions `optional` are left out of a statement whose rows all hold None there.
    """
    stored: dict[str, int] = {}
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        unset = {i for i in optional if all(row[i] is None for row in chunk)}
        keep = [i for i in range(len(names)) if i not in unset]
        columns = ", ".join(names[i] for i in keep)
        marks = ", ".join([f"({', '.join('?' * len(keep))})"] * len(chunk))
        sql = f"INSERT INTO users ({columns}) VALUES {marks} RETURNING braze_id, num"
        params = [row[i] for row in chunk for i in keep]
        stored.update(conn.exec_driver_sql(sql, tuple(params)).all())
    return stored


def update_users(
    conn: Connection,
    names: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    nums: Sequence[int],
    *,
    loaded: Mapping[int, tuple[Any, ...]],
    always: Sequence[int],
) -> None:
    """Rewrite the users numbered `nums` with `rows` (values in the order of `names`).

    A statement sets the columns whose value differs from the row as `loaded` (same order) in any of
    its rows, and those at the positions `always`; a row that was not loaded sets every column.
    """
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk, chunk_nums = rows[start : start + ROWS_PER_STATEMENT], nums[start : start + ROWS_PER_STATEMENT]
        changed = set(always)
        for row, num in zip(chunk, chunk_nums, strict=True):
            before = loaded.get(num)
            if before is None:
                changed = set(range(len(names)))
                break
            changed.update(i for i, (new, old) in enumerate(zip(row, before, strict=True)) if new != old)
        columns = sorted(changed)
        width = len(columns) + 1
        sets = ", ".join(f"{names[i]} = v.column{n}" for n, i in enumerate(columns, 1))
        values = ", ".join([f"({', '.join('?' * width)})"] * len(chunk))
        params = [
            v for row, num in zip(chunk, chunk_nums, strict=True) for v in (*(row[i] for i in columns), num)
        ]
        sql = f"UPDATE users SET {sets} FROM (VALUES {values}) AS v WHERE num = v.column{width}"
        conn.exec_driver_sql(sql, tuple(params))
