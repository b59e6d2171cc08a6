"""Campaign and Canvas definitions in SQL."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Connection, insert, select, update

from cohorthub.messaging.ports import Program
from cohorthub.store.messaging.schema import programs


def _program(row: Any) -> Program:
    return Program(
        id=row.id,
        workspace_id=row.workspace_id,
        kind=row.kind,
        name=row.name,
        status=row.status,
        spec=msgspec.json.decode(row.spec),
        created_at=row.created_at,
        updated_at=row.updated_at,
        first_sent_at=row.first_sent_at,
        last_sent_at=row.last_sent_at,
    )


def _values(p: Program) -> dict[str, Any]:
    return {
        "id": p.id,
        "workspace_id": p.workspace_id,
        "kind": p.kind,
        "name": p.name,
        "status": p.status,
        "spec": msgspec.json.encode(p.spec).decode(),
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


class SqlProgramStore:
    """Rows of `msg_programs`."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, program: Program) -> None:
        """Store a new program."""
        self._conn.execute(insert(programs).values(**_values(program)))

    def update(self, program: Program) -> None:
        """Replace a program's definition and status."""
        values = _values(program)
        self._conn.execute(update(programs).where(programs.c.id == program.id).values(**values))

    def get(self, workspace_id: str | None, program_id: str) -> Program | None:
        """One program (of the workspace when given)."""
        stmt = select(programs).where(programs.c.id == program_id)
        if workspace_id is not None:
            stmt = stmt.where(programs.c.workspace_id == workspace_id)
        row = self._conn.execute(stmt).first()
        return _program(row) if row else None

    def all(self, workspace_id: str, kind: str) -> list[Program]:
        """A workspace's programs of one kind, oldest first."""
        stmt = (
            select(programs)
            .where(programs.c.workspace_id == workspace_id, programs.c.kind == kind)
            .order_by(programs.c.created_at, programs.c.id)
        )
        return [_program(r) for r in self._conn.execute(stmt)]

    def active(self, kind: str) -> list[Program]:
        """Every active program of one kind (all workspaces)."""
        stmt = select(programs).where(programs.c.kind == kind, programs.c.status == "active")
        return [_program(r) for r in self._conn.execute(stmt)]

    def mark_sent(self, program_id: str, now: float) -> None:
        """Record a send time (first and last)."""
        self._conn.execute(
            update(programs)
            .where(programs.c.id == program_id, programs.c.first_sent_at.is_(None))
            .values(first_sent_at=now)
        )
        self._conn.execute(update(programs).where(programs.c.id == program_id).values(last_sent_at=now))
