"""Canvas entries: one row per journey, claimed with a lease when a step is due."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Connection, and_, func, or_, select, update

from cohorthub.messaging.ports import EntryRow
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


class SqlEntryStore:
    """Rows of `msg_entries`."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, entry: EntryRow, *, trigger_key: str, now: float) -> int | None:
        """Start a journey due now; None when this trigger already started one."""
        stmt = (
            insert_for(self._conn, entries)
            .values(
                workspace_id=entry.workspace_id,
                canvas_id=entry.canvas_id,
                user_num=entry.user_num,
                trigger_key=trigger_key,
                step_id=entry.step_id,
                step_since=now,
                waiting=False,
                next_at=now,
                state="active",
                properties=msgspec.json.encode(entry.properties).decode(),
                entered_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["canvas_id", "trigger_key"])
            .returning(entries.c.id)
        )
        found = self._conn.execute(stmt).scalar()
        return int(found) if found is not None else None

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

    def claim(self, *, now: float, owner: str, lease_until: float, limit: int) -> list[EntryRow]:
        """Lease active journeys whose next step is due (or whose lease ran out)."""
        c = entries.c
        due = and_(c.state == "active", c.next_at <= now, or_(c.lease_until.is_(None), c.lease_until < now))
        stmt = select(entries).where(due).order_by(c.next_at, c.id).limit(limit)
        if self._conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = list(self._conn.execute(stmt))
        if rows:
            self._conn.execute(
                update(entries)
                .where(c.id.in_([r.id for r in rows]))
                .values(owner=owner, lease_until=lease_until)
            )
        return [_entry(r) for r in rows]

    def move(
        self,
        entry_id: int,
        *,
        step_id: str | None,
        since: float,
        waiting: bool,
        next_at: float | None,
        state: str,
        now: float,
    ) -> None:
        """Record where a journey stands and when it is next due; releases the lease."""
        self._conn.execute(
            update(entries)
            .where(entries.c.id == entry_id)
            .values(
                step_id=step_id,
                step_since=since,
                waiting=waiting,
                next_at=next_at,
                state=state,
                owner=None,
                lease_until=None,
                updated_at=now,
            )
        )

    def active_for_user(self, workspace_id: str, user_num: int) -> list[EntryRow]:
        """The user's journeys in progress."""
        c = entries.c
        stmt = select(entries).where(
            c.workspace_id == workspace_id, c.user_num == user_num, c.state == "active"
        )
        return [_entry(r) for r in self._conn.execute(stmt)]

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
