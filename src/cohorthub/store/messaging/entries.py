"""Canvas entries: one row per journey, claimed with a lease when a step is due."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import BigInteger, ColumnElement, Connection, and_, any_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from cohorthub.messaging.ports import EntryRow, Move
from cohorthub.store.messaging.schema import entries, insert_for


def _entry(r: Any) -> EntryRow:
    return EntryRow(
        id=r.id,
        workspace_id=r.workspace_id,
        canvas_id=r.canvas_id,
        user_num=r.user_num,
        step_id=r.step_id,
        step_since=r.step_since,
        waiting=bool(r.waiting),
        properties=msgspec.json.decode(r.properties),
        entered_at=r.entered_at,
    )


_encode = msgspec.json.Encoder().encode
#: PostgreSQL: a whole batch in one statement with array parameters (short, prepared once).
_ADD_PG = (
    "INSERT INTO msg_entries (workspace_id, canvas_id, user_num, trigger_key, step_id, step_since,"
    " waiting, next_at, state, properties, entered_at, updated_at)"
    " SELECT w, c, u, k, s, %s, false, %s, 'active', p, %s, %s FROM unnest(%s::text[], %s::text[],"
    " %s::bigint[], %s::text[], %s::text[], %s::text[]) AS t(w, c, u, k, s, p)"
    " ON CONFLICT (canvas_id, trigger_key) DO NOTHING RETURNING id, trigger_key"
)
_MOVE_PG = (
    "UPDATE msg_entries SET step_id = t.s, step_since = t.since, waiting = t.w, next_at = t.n,"
    " state = t.st, owner = NULL, lease_until = NULL, updated_at = %s"
    " FROM unnest(%s::bigint[], %s::text[], %s::float8[], %s::boolean[], %s::float8[], %s::text[])"
    " AS t(i, s, since, w, n, st) WHERE msg_entries.id = t.i"
)


class SqlEntryStore:
    """Rows of `msg_entries`."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add_many(self, rows: Sequence[tuple[EntryRow, str]], *, now: float) -> dict[str, int]:
        """Start journeys due now, one per (entry, trigger key); return the ids of the new ones by key.

        A trigger key that already started a journey of the Canvas starts none.
        """
        if not rows:
            return {}
        if self._conn.dialect.name == "postgresql":
            return self._add_many_pg(rows, now)
        values = [
            {
                "workspace_id": entry.workspace_id,
                "canvas_id": entry.canvas_id,
                "user_num": entry.user_num,
                "trigger_key": key,
                "step_id": entry.step_id,
                "step_since": now,
                "waiting": False,
                "next_at": now,
                "state": "active",
                "properties": _encode(entry.properties).decode(),
                "entered_at": now,
                "updated_at": now,
            }
            for entry, key in rows
        ]
        stmt = (
            insert_for(self._conn, entries)
            .on_conflict_do_nothing(index_elements=["canvas_id", "trigger_key"])
            .returning(entries.c.id, entries.c.trigger_key)
        )
        return {str(r.trigger_key): int(r.id) for r in self._conn.execute(stmt, values)}

    def _add_many_pg(self, rows: Sequence[tuple[EntryRow, str]], now: float) -> dict[str, int]:
        columns = [
            [e.workspace_id for e, _ in rows],
            [e.canvas_id for e, _ in rows],
            [e.user_num for e, _ in rows],
            [key for _, key in rows],
            [e.step_id for e, _ in rows],
            [_encode(e.properties).decode() for e, _ in rows],
        ]
        found = self._conn.exec_driver_sql(_ADD_PG, (now, now, now, now, *columns))
        return {str(key): int(i) for i, key in found}

    def last_entered(self, canvas_id: str, user_num: int) -> float | None:
        """When the user last entered this Canvas."""
        stmt = select(func.max(entries.c.entered_at)).where(
            entries.c.canvas_id == canvas_id, entries.c.user_num == user_num
        )
        value = self._conn.execute(stmt).scalar()
        return float(value) if value is not None else None

    def last_entered_many(self, canvas_id: str, nums: list[int]) -> dict[int, float]:
        """When each of these users last entered this Canvas (users who never did are left out)."""
        if not nums:
            return {}
        c = entries.c
        stmt = (
            select(c.user_num, func.max(c.entered_at))
            .where(c.canvas_id == canvas_id, c.user_num.in_(nums))
            .group_by(c.user_num)
        )
        return {int(n): float(t) for n, t in self._conn.execute(stmt)}

    def existing_triggers(self, canvas_id: str, keys: list[str]) -> set[str]:
        """Which of these trigger keys entered a user into this Canvas."""
        if not keys:
            return set()
        c = entries.c
        stmt = select(c.trigger_key).where(c.canvas_id == canvas_id, c.trigger_key.in_(keys))
        return {str(k) for (k,) in self._conn.execute(stmt)}

    def any_due(self, now: float) -> bool:
        """Whether a journey's next step is due (a read: an idle worker takes no write lock)."""
        return self._conn.execute(select(entries.c.id).where(_due_entries(now)).limit(1)).first() is not None

    def claim(self, *, now: float, owner: str, lease_until: float, limit: int) -> list[EntryRow]:
        """Lease active journeys whose next step is due (or whose lease ran out)."""
        c = entries.c
        stmt = select(entries).where(_due_entries(now)).order_by(c.next_at, c.id).limit(limit)
        if self._conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = list(self._conn.execute(stmt))
        if rows:
            ids = [r.id for r in rows]
            among = (
                c.id == any_(bindparam("ids", ids, type_=ARRAY(BigInteger)))
                if self._conn.dialect.name == "postgresql"
                else c.id.in_(ids)
            )
            self._conn.execute(update(entries).where(among).values(owner=owner, lease_until=lease_until))
        return [_entry(r) for r in rows]

    def move_many(self, moves: Sequence[Move], *, now: float) -> None:
        """Record where journeys stand and when each is next due; releases their leases."""
        if not moves:
            return
        if self._conn.dialect.name == "postgresql":
            columns = [
                [m.entry_id for m in moves],
                [m.step_id for m in moves],
                [m.since for m in moves],
                [m.waiting for m in moves],
                [m.next_at for m in moves],
                [m.state for m in moves],
            ]
            self._conn.exec_driver_sql(_MOVE_PG, (now, *columns))
            return
        stmt = (
            update(entries)
            .where(entries.c.id == bindparam("b_id"))
            .values(
                step_id=bindparam("b_step"),
                step_since=bindparam("b_since"),
                waiting=bindparam("b_waiting"),
                next_at=bindparam("b_next"),
                state=bindparam("b_state"),
                owner=None,
                lease_until=None,
                updated_at=now,
            )
        )
        params = [
            {"b_id": m.entry_id, "b_step": m.step_id, "b_since": m.since, "b_waiting": m.waiting,
             "b_next": m.next_at, "b_state": m.state}
            for m in moves
        ]  # fmt: skip
        self._conn.execute(stmt, params)

    def active_for_user(self, workspace_id: str, user_num: int) -> list[EntryRow]:
        """The user's journeys in progress."""
        c = entries.c
        stmt = select(entries).where(
            c.workspace_id == workspace_id, c.user_num == user_num, c.state == "active"
        )
        return [_entry(r) for r in self._conn.execute(stmt)]

    def wake(self, entry_id: int, now: float) -> None:
        """Make a waiting journey due now (its decision split has its answer)."""
        c = entries.c
        waiting = and_(c.id == entry_id, c.state == "active", c.waiting.is_(True), c.next_at > now)
        self._conn.execute(update(entries).where(waiting).values(next_at=now, updated_at=now))

    def convert(self, entry_id: int, now: float) -> bool:
        """Record a journey's conversion once; True the first time."""
        result = self._conn.execute(
            update(entries)
            .where(entries.c.id == entry_id, entries.c.converted_at.is_(None))
            .values(converted_at=now)
        )
        return result.rowcount == 1

    def converted_since(self, canvas_id: str, user_num: int, since: float) -> list[EntryRow]:
        """The user's journeys of this Canvas entered since `since` and not yet converted."""
        c = entries.c
        stmt = select(entries).where(
            c.canvas_id == canvas_id, c.user_num == user_num, c.entered_at >= since, c.converted_at.is_(None)
        )
        return [_entry(r) for r in self._conn.execute(stmt)]

    def stats(self, canvas_id: str) -> dict[str, int]:
        """Journeys entered, active, done, exited and converted."""
        c = entries.c
        stmt = (
            select(c.state, func.count(), func.count(c.converted_at))
            .where(c.canvas_id == canvas_id)
            .group_by(c.state)
        )
        out = {"entered": 0, "active": 0, "done": 0, "exited": 0, "converted": 0}
        for state, n, converted in self._conn.execute(stmt):
            out[state] = int(n)
            out["entered"] += int(n)
            out["converted"] += int(converted)
        return out


def _due_entries(now: float) -> ColumnElement[bool]:
    c = entries.c
    return and_(c.state == "active", c.next_at <= now, or_(c.lease_until.is_(None), c.lease_until < now))
