"""Scheduled dispatches: claimed with a lease; `FOR UPDATE SKIP LOCKED` on PostgreSQL."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Connection, and_, func, or_, select, update

from cohorthub.messaging.ports import Job
from cohorthub.store.messaging.schema import insert_for, jobs


class SqlJobStore:
    """Rows of `msg_jobs`."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, job: Job, *, idem_key: str | None, now: float) -> str:
        """Queue a dispatch; when `idem_key` was used already, queue nothing and return that dispatch id."""
        stmt = insert_for(self._conn, jobs).values(
            workspace_id=job.workspace_id,
            program_id=job.program_id,
            dispatch_id=job.dispatch_id,
            send_id=job.send_id,
            due_at=job.due_at,
            state="pending",
            payload=msgspec.json.encode(job.payload).decode(),
            idem_key=idem_key,
            created_at=now,
        )
        if idem_key is None:
            self._conn.execute(stmt)
            return job.dispatch_id
        self._conn.execute(stmt.on_conflict_do_nothing(index_elements=["idem_key"]))
        found = self._conn.execute(select(jobs.c.dispatch_id).where(jobs.c.idem_key == idem_key)).scalar_one()
        return str(found)

    def find(self, idem_key: str) -> str | None:
        """The dispatch id queued under `idem_key`, if any."""
        found = self._conn.execute(select(jobs.c.dispatch_id).where(jobs.c.idem_key == idem_key)).scalar()
        return str(found) if found is not None else None

    def any_due(self, now: float) -> bool:
        """Whether a job is due or its lease ran out (a read: an idle worker takes no write lock)."""
        return self._conn.execute(select(jobs.c.id).where(_due_jobs(now)).limit(1)).first() is not None

    def claim(self, *, now: float, owner: str, lease_until: float, limit: int) -> list[Job]:
        """Lease due jobs and jobs whose lease ran out."""
        stmt = select(jobs).where(_due_jobs(now)).order_by(jobs.c.due_at, jobs.c.id).limit(limit)
        if self._conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = list(self._conn.execute(stmt))
        if not rows:
            return []
        self._conn.execute(
            update(jobs)
            .where(jobs.c.id.in_([r.id for r in rows]))
            .values(state="running", owner=owner, lease_until=lease_until)
        )
        return [
            Job(
                r.id,
                r.workspace_id,
                r.program_id,
                r.dispatch_id,
                r.send_id,
                r.due_at,
                msgspec.json.decode(r.payload),
            )
            for r in rows
        ]

    def extend(self, job_id: int, *, owner: str, lease_until: float) -> bool:
        """Keep the lease; False when another worker took the job over."""
        result = self._conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.owner == owner, jobs.c.state == "running")
            .values(lease_until=lease_until)
        )
        return result.rowcount == 1

    def release(self, job_id: int, *, due_at: float) -> None:
        """Give a job back, due again at `due_at`."""
        self._conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(state="pending", owner=None, lease_until=None, due_at=due_at)
        )

    def finish(self, job_id: int, *, now: float, targeted: int, note: str) -> None:
        """Mark a job done."""
        self._conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(state="done", finished_at=now, targeted=targeted, note=note, lease_until=None)
        )

    def cancel_pending(self, program_id: str) -> int:
        """Cancel a program's jobs that have not started."""
        result = self._conn.execute(
            update(jobs)
            .where(jobs.c.program_id == program_id, jobs.c.state == "pending")
            .values(state="cancelled")
        )
        return int(result.rowcount)

    def reschedule(
        self, program_id: str, dispatch_id: str, *, due_at: float, payload: dict[str, Any] | None
    ) -> bool:
        """Move a dispatch that has not started (and replace its payload when given); False when there is
        none (unknown, started, done or cancelled)."""
        values: dict[str, Any] = {"due_at": due_at}
        if payload is not None:
            values["payload"] = msgspec.json.encode(payload).decode()
        result = self._conn.execute(
            update(jobs)
            .where(
                jobs.c.program_id == program_id, jobs.c.dispatch_id == dispatch_id, jobs.c.state == "pending"
            )
            .values(**values)
        )
        return result.rowcount == 1

    def cancel(self, program_id: str, dispatch_id: str) -> bool:
        """Cancel one dispatch that has not started; False when there is none."""
        result = self._conn.execute(
            update(jobs)
            .where(
                jobs.c.program_id == program_id, jobs.c.dispatch_id == dispatch_id, jobs.c.state == "pending"
            )
            .values(state="cancelled")
        )
        return result.rowcount == 1

    def list(self, program_id: str) -> list[dict[str, Any]]:
        """A program's jobs, newest first (at most 100)."""
        stmt = (
            select(
                jobs.c.id,
                jobs.c.dispatch_id,
                jobs.c.send_id,
                jobs.c.due_at,
                jobs.c.state,
                jobs.c.finished_at,
                jobs.c.targeted,
                jobs.c.note,
            )
            .where(jobs.c.program_id == program_id)
            .order_by(jobs.c.id.desc())
            .limit(100)
        )
        return [dict(r._mapping) for r in self._conn.execute(stmt)]

    def pending_count(self) -> int:
        """Jobs not yet done (all programs)."""
        stmt = select(func.count()).select_from(jobs).where(jobs.c.state.in_(("pending", "running")))
        return int(self._conn.execute(stmt).scalar_one())


def _due_jobs(now: float) -> ColumnElement[bool]:
    return or_(
        and_(jobs.c.state == "pending", jobs.c.due_at <= now),
        and_(jobs.c.state == "running", jobs.c.lease_until < now),
    )
