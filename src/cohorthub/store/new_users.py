"""Users a bulk import creates with nothing else to write: rows inserted as they are, nothing read back.

The identity repository (store/identity.py) hands these over; everything else a user write does
(aliases, devices, events, merges) stays there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from cohorthub.identity.model import STANDARD_FIELDS
from cohorthub.identity.ports import NewUser
from cohorthub.store.pg_rows import copy_rows
from cohorthub.store.statistics import note_inserted
from cohorthub.store.tables import users

#: Rows per multi-row INSERT (SQLite allows 32,766 parameters a statement).
_ROWS_PER_INSERT = 500
#: The columns of a new user's times, and a `NewUser`'s standard fields by position.
_NEW_TIMES = ("workspace_id", "created_at", "updated_at")
_NEW_NAMES = dict(enumerate(STANDARD_FIELDS, 2))
_NEW_FIELDS = list(_NEW_NAMES)


def insert_new_users(
    conn: Connection,
    workspace_id: str,
    new: Sequence[NewUser],
    *,
    now: float,
    stamps: Callable[[int], list[int]],
) -> None:
    """Insert users no one has yet and nothing else names (a bulk import's new users).

    Nothing is read back: no alias, device or event needs their numbers. A standard field no
    row sets is left out (NULL): binding it cost a quarter of the insert. SQLite: multi-row
    statements, each row with a fresh change stamp (skipping the stamping trigger); PostgreSQL:
    one `COPY` (its trigger stamps them).
    """
    if not new:
        return
    note_inserted(conn, len(new))
    present = [i for i in _NEW_FIELDS if list(map(itemgetter(i), new)).count(None) < len(new)]
    pick = itemgetter(0, 1, *present)  # braze_id, external_id and the fields some row sets
    names = [
        *_NEW_TIMES,
        "braze_id",
        "external_id",
        *(_NEW_NAMES[i] for i in present),
        "custom_attributes",
    ]
    if conn.dialect.name == "postgresql":
        rows = [(workspace_id, now, now, *pick(u), u[-1]) for u in new]
        copy_rows(conn, users, names, rows)
        return
    stamped = stamps(len(new))
    names.append("change_id")
    marks = f"({', '.join('?' * len(names))})"
    for start in range(0, len(new), _ROWS_PER_INSERT):  # larger statements cost more to prepare
        params: list[Any] = []
        add = params.extend  # flattened as it goes: a generator over the rows cost more
        end = start + _ROWS_PER_INSERT
        for u, stamp in zip(new[start:end], stamped[start:end], strict=True):
            add((workspace_id, now, now, *pick(u), u[-1], stamp))
        count = len(params) // len(names)
        sql = f"INSERT INTO users ({', '.join(names)}) VALUES {', '.join([marks] * count)}"
        conn.exec_driver_sql(sql, tuple(params))
