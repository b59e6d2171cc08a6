"""Small factories that insert users, events, purchases and cohort membership rows directly."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from cohorthub.store.apps import sdk_sessions
from cohorthub.store.tables import cohort_changes, cohorts, custom_events, purchases, users, workspaces


def workspace(conn: Connection, *, now: float) -> str:
    """A bare workspace row."""
    ws = uuid.uuid4().hex
    conn.execute(insert(workspaces).values(id=ws, name="test", created_at=now))
    return ws


def user(
    conn: Connection, ws: str, *, now: float, custom: dict[str, Any] | None = None, **columns: Any
) -> int:
    """A user row; its number."""
    values = {"workspace_id": ws, "braze_id": uuid.uuid4().hex[:24], "created_at": now, "updated_at": now}
    values |= {"custom_attributes": json.dumps(custom or {})} | columns
    return int(conn.execute(insert(users).values(**values).returning(users.c.num)).scalar_one())


def change_user(
    conn: Connection, num: int, *, now: float, custom: dict[str, Any] | None = None, **columns: Any
) -> None:
    """Update a user row the way identity does (updated_at = now)."""
    values: dict[str, Any] = {"updated_at": now, **columns}
    if custom is not None:
        values["custom_attributes"] = json.dumps(custom)
    conn.execute(update(users).where(users.c.num == num).values(**values))


def delete_user(conn: Connection, num: int) -> None:
    """Remove a user row (callers record the tombstone through the listener first)."""
    conn.execute(delete(users).where(users.c.num == num))


def event(conn: Connection, ws: str, num: int, name: str, *, at: float) -> None:
    """One custom event."""
    conn.execute(
        insert(custom_events).values(workspace_id=ws, user_num=num, name=name, time=at, properties="{}")
    )


def purchase(conn: Connection, ws: str, num: int, product_id: str, *, at: float) -> None:
    """One purchase."""
    conn.execute(
        insert(purchases).values(
            workspace_id=ws, user_num=num, product_id=product_id, currency="USD", price=1.0, quantity=1,
            time=at, properties="{}",
        )
    )  # fmt: skip


def session(conn: Connection, ws: str, num: int, *, at: float) -> None:
    """One SDK session that started at `at`."""
    values = {
        "workspace_id": ws, "session_id": uuid.uuid4().hex, "user_num": num, "app_id": "app",
        "device_id": "device", "started_at": at, "first": False,
    }  # fmt: skip
    conn.execute(insert(sdk_sessions).values(**values))


def cohort(conn: Connection, ws: str, cohort_id: str, *, name: str, now: float, partner: str = "heap") -> int:
    """A named, empty partner cohort; its pk."""
    values = {
        "workspace_id": ws, "partner": partner, "cohort_id": cohort_id, "name": name, "named": True,
        "created_at": now, "updated_at": now, "version": 0, "size": 0, "snapshot_version": 0,
        "import_requests": 0, "identifiers_matched": 0, "identifiers_unmatched": 0, "unmatched_sample": "[]",
    }  # fmt: skip
    return int(conn.execute(insert(cohorts).values(**values).returning(cohorts.c.pk)).scalar_one())


def cohort_write(
    conn: Connection, pk: int, *, entered: Iterable[int] = (), left: Iterable[int] = (), now: float
) -> None:
    """One import: log the changes under the next version, as the cohort engine does."""
    version = int(conn.execute(select(cohorts.c.version).where(cohorts.c.pk == pk)).scalar_one()) + 1
    base = {"cohort_pk": pk, "version": version, "at": now, "reason": "import"}
    rows = [{**base, "user_num": n, "entered": True} for n in entered]
    rows += [{**base, "user_num": n, "entered": False} for n in left]
    if rows:
        conn.execute(insert(cohort_changes), rows)
    conn.execute(update(cohorts).where(cohorts.c.pk == pk).values(version=version, updated_at=now))
