"""Planner statistics that follow the identity tables as they grow (PostgreSQL).

The planner estimates from the statistics of the last `ANALYZE`. With autovacuum off, late, or
still below its threshold, a table grown from empty (or a new workspace in a table analyzed
before it existed) looks like a handful of rows, and a lookup by identifier may then read every
row of the workspace through the wrong index, once per request. So each process counts the
identity rows it inserts and analyzes the identity tables itself once they have doubled (at least
`MIN_GROWTH` rows) since it last did: about three times per order of magnitude of growth. The
planner scales the analyzed row counts to the table's current size itself, so statistics up to
half as old as the table still plan index lookups; an `ANALYZE` of a large table samples 30,000
rows (~0.1–0.2 s of server CPU), and analyzing at every fifth of growth cost ~15 % of the server's
CPU while 100,000 users were loaded through `/users/track` (one thread: 1.9 ms a request, 0.2 now).
"""

from __future__ import annotations

import threading

from sqlalchemy import Connection

from cohorthub.errors import ResourceLocked

#: Inserted rows that make a first `ANALYZE` worth its cost.
MIN_GROWTH = 500
TABLES = "users, user_aliases, user_devices"


class _Growth:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows = 0
        self.analyzed = 0  # the users table's size at this process's last ANALYZE


_growth: dict[int, _Growth] = {}
_registry = threading.Lock()


def note_inserted(conn: Connection, rows: int) -> None:
    """Count identity rows this transaction inserted; analyze the tables once they grew enough."""
    if not rows or conn.dialect.name != "postgresql":
        return
    with _registry:
        growth = _growth.setdefault(id(conn.engine), _Growth())
    with growth.lock:
        growth.rows += rows
        if growth.rows < max(MIN_GROWTH, growth.analyzed):
            return
        growth.rows = 0
    nested = conn.begin_nested()  # a concurrent ANALYZE (or autovacuum) holding the lock: skip
    try:
        conn.exec_driver_sql(f"ANALYZE {TABLES}")
        size = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE relname = 'users'").scalar()
    except ResourceLocked:
        nested.rollback()
        return
    nested.commit()
    with growth.lock:
        growth.analyzed = max(int(size or 0), 0)
