"""Integer ids are never handed out twice on SQLite (AUTOINCREMENT).

Without AUTOINCREMENT SQLite gives a new row max(rowid)+1, so once the newest rows are deleted
(outbox retention pruning everything, a user deleted with their events) their ids come back.
Several ids are cursors or watermarks (`outbox.seq` behind `currents_connectors.cursor_seq`,
event ids behind segment catch-up and messaging scans, `cohort_changes.id`), user numbers live
in bitmaps and caches, send ids in signed links: a reused id is skipped or misattributed.

Each table with an integer surrogate key is rebuilt with `PRIMARY KEY AUTOINCREMENT` (SQLite's
documented create-copy-drop-rename procedure; indexes and triggers are recreated from their
stored SQL). Copying the rows seeds `sqlite_sequence` with each table's max id; the outbox's
sequence also starts at or above every connector's cursor (and the event, purchase and cohort
change sequences at or above the messaging scanners' cursors), so an install that pruned its
whole outbox before this upgrade delivers its next events. The rebuild needs `PRAGMA foreign_keys=OFF`
(dropping `users` must not cascade); the migration environment turns it off for the run and
checks `PRAGMA foreign_key_check` before committing. PostgreSQL sequences never reuse values:
nothing to do there. Downgrade keeps AUTOINCREMENT (older code works with it).

Revision ID: 0015_ids_autoincrement
Revises: 0013_bulk_stamps
"""

from __future__ import annotations

import re

from alembic import op
from sqlalchemy import Connection

revision = "0015_ids_autoincrement"
down_revision = "0013_bulk_stamps"
branch_labels = None
depends_on = ("0004_currents", "0005_segments", "0012_ledger_stats", "0009_sdk", "0010_dashboard")

#: table -> its integer key (every table whose primary key is one INTEGER column).
TABLES = {
    # core
    "outbox": "seq",
    "users": "num",
    "custom_events": "id",
    "purchases": "id",
    "cohorts": "pk",
    "cohort_changes": "id",
    "rest_api_keys": "id",
    "partner_api_keys": "id",
    "data_import_keys": "id",
    # currents
    "currents_batches": "id",
    "currents_dead_letters": "id",
    # segments
    "segments": "pk",
    "segment_sizes": "id",
    "segment_snapshots": "id",
    "segment_user_deletions": "id",
    # messaging
    "msg_sends": "id",
    "msg_jobs": "id",
    "msg_entries": "id",
    # sdk
    "sdk_sessions": "id",
    # dashboard
    "accounts": "id",
    "sign_in_failures": "id",
}


def autoincrement_sql(create: str, key: str) -> str:
    """The CREATE TABLE statement with `key` declared `PRIMARY KEY AUTOINCREMENT` in its column."""
    constraint = re.search(rf",\s*(CONSTRAINT (\w+) )?PRIMARY KEY \({key}\)", create)
    column = re.search(rf"(\n\s*{key} INTEGER NOT NULL)(,)", create)
    if constraint is None or column is None:
        raise RuntimeError(f"unexpected table definition: {create}")
    named = f" CONSTRAINT {constraint.group(2)}" if constraint.group(2) else ""
    out = create[: constraint.start()] + create[constraint.end() :]
    return out.replace(column.group(1), f"{column.group(1)}{named} PRIMARY KEY AUTOINCREMENT", 1)


def _rebuild(conn: Connection, table: str, key: str) -> None:
    rows = conn.exec_driver_sql(
        "SELECT type, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL", (table,)
    ).all()
    create = next(sql for kind, sql in rows if kind == "table")
    if "AUTOINCREMENT" in create:
        return
    header = re.match(rf'CREATE TABLE "?{table}"? \(', create)
    if header is None:
        raise RuntimeError(f"unexpected table definition: {create}")
    temp = f"_ids_new_{table}"
    body = autoincrement_sql(create, key)[header.end() :]
    conn.exec_driver_sql(f"CREATE TABLE {temp} ({body}")
    names = [r[1] for r in conn.exec_driver_sql(f"PRAGMA table_info({table})").all()]
    columns = ", ".join(f'"{n}"' for n in names)
    conn.exec_driver_sql(f"INSERT INTO {temp} ({columns}) SELECT {columns} FROM {table} ORDER BY {key}")
    conn.exec_driver_sql(f"DROP TABLE {table}")  # drops its indexes and triggers too
    conn.exec_driver_sql(f"ALTER TABLE {temp} RENAME TO {table}")
    for kind, sql in rows:
        if kind in ("index", "trigger"):
            conn.exec_driver_sql(sql)


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return
    if conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("0015_ids_autoincrement rebuilds tables: run it with PRAGMA foreign_keys=OFF")
    for table, key in TABLES.items():
        _rebuild(conn, table, key)
    # Copying the rows set each sequence to the table's max id; a cursor already past it (the newest
    # rows were deleted before this upgrade) raises it, so ids continue above every cursor.
    for table, cursors in _CURSORS.items():
        _seed_at_least(conn, table, cursors)


#: table -> a query for the highest cursor stored over its ids.
_CURSORS = {
    "outbox": "SELECT max(cursor_seq) FROM currents_connectors",
    "custom_events": "SELECT max(value) FROM msg_cursors WHERE name = 'events'",
    "purchases": "SELECT max(value) FROM msg_cursors WHERE name = 'purchases'",
    "cohort_changes": "SELECT max(value) FROM msg_cursors WHERE name LIKE 'canvas:%:cohort'",
}


def _seed_at_least(conn: Connection, table: str, cursors: str) -> None:
    floor = conn.exec_driver_sql(cursors).scalar() or 0
    current = conn.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).scalar()
    if current is None:
        conn.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, floor))
    elif floor > current:
        conn.exec_driver_sql("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (floor, table))


def downgrade() -> None:
    """AUTOINCREMENT stays: the previous schema's code reads and writes these tables unchanged."""
