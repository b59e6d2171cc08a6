"""The send ledger: one row per (program, step, user, dispatch), inserted before the message leaves."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update

from cohorthub.messaging.ports import ReceivedRow, SendKey, SendRow
from cohorthub.store.messaging.schema import insert_for, rates, sends, suppressions

#: PostgreSQL: a batch in one statement with array parameters (short, prepared once).
_RESERVE_PG = (
    "INSERT INTO msg_sends (workspace_id, program_id, step_id, user_num, dispatch_id, send_id, channel,"
    " address, state, created_at, updated_at)"
    " SELECT %s, p, s, u, d, i, c, a, 'sending', %s, %s FROM unnest(%s::text[], %s::text[], %s::bigint[],"
    " %s::text[], %s::text[], %s::text[], %s::text[]) AS t(p, s, u, d, i, c, a)"
    " ON CONFLICT (program_id, step_id, user_num, dispatch_id) DO NOTHING"
    " RETURNING id, program_id, step_id, user_num, dispatch_id"
)
#: The ids twice: `id = ANY(…)` makes the primary key find the rows (joined alone with the unnest, the
#: planner hashes the whole ledger when its statistics are stale, every batch).
_SETTLE_PG = (
    "UPDATE msg_sends SET state = t.s, error = t.e, updated_at = %s"
    " FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS t(i, s, e)"
    " WHERE msg_sends.id = ANY(%s::bigint[]) AND msg_sends.id = t.i"
)
_TOUCHABLE = {"opened_at", "clicked_at", "unsubscribed_at", "converted_at"}


def _row(r: Any) -> SendRow:
    return SendRow(
        id=r.id,
        workspace_id=r.workspace_id,
        key=SendKey(r.program_id, r.step_id, r.user_num, r.dispatch_id),
        send_id=r.send_id,
        channel=r.channel,
        address=r.address,
        state=r.state,
        opened_at=r.opened_at,
        clicked_at=r.clicked_at,
        unsubscribed_at=r.unsubscribed_at,
    )


class SqlLedgerStore:
    """Rows of `msg_sends` and `msg_rates`."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def reserve(
        self, workspace_id: str, rows: Sequence[tuple[SendKey, str | None, str, str | None]], *, now: float
    ) -> dict[SendKey, int]:
        """Insert ledger rows in state `sending`; return the ids of those that were not there yet."""
        if not rows:
            return {}
        values = [
            {
                "workspace_id": workspace_id,
                "program_id": k.program_id,
                "step_id": k.step_id,
                "user_num": k.user_num,
                "dispatch_id": k.dispatch_id,
                "send_id": send_id,
                "channel": channel,
                "address": address,
                "state": "sending",
                "created_at": now,
                "updated_at": now,
            }
            for k, send_id, channel, address in rows
        ]
        if self._conn.dialect.name == "postgresql":
            return self._reserve_pg(workspace_id, rows, now)
        c = sends.c
        stmt = (
            insert_for(self._conn, sends)
            .on_conflict_do_nothing(index_elements=["program_id", "step_id", "user_num", "dispatch_id"])
            .returning(c.id, c.program_id, c.step_id, c.user_num, c.dispatch_id)
        )
        out: dict[SendKey, int] = {}
        for r in self._conn.execute(stmt, values):
            out[SendKey(r.program_id, r.step_id, r.user_num, r.dispatch_id)] = r.id
        return out

    def _reserve_pg(
        self, workspace_id: str, rows: Sequence[tuple[SendKey, str | None, str, str | None]], now: float
    ) -> dict[SendKey, int]:
        columns = [
            [k.program_id for k, *_ in rows],
            [k.step_id for k, *_ in rows],
            [k.user_num for k, *_ in rows],
            [k.dispatch_id for k, *_ in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
        ]
        found = self._conn.exec_driver_sql(_RESERVE_PG, (workspace_id, now, now, *columns))
        return {SendKey(p, s, int(u), d): int(i) for i, p, s, u, d in found}

    def existing(self, program_id: str, step_id: str, dispatch_id: str, nums: list[int]) -> set[int]:
        """The users among `nums` that already have a ledger row for this message."""
        if not nums:
            return set()
        c = sends.c
        stmt = select(c.user_num).where(
            c.program_id == program_id,
            c.step_id == step_id,
            c.dispatch_id == dispatch_id,
            c.user_num.in_(nums),
        )
        return {int(n) for n in self._conn.execute(stmt).scalars()}

    def settle(self, outcomes: Iterable[tuple[int, str, str | None]], *, now: float) -> None:
        """Record what became of each message: (ledger id, state, error)."""
        outcomes = list(outcomes)
        if len(outcomes) > 1 and self._conn.dialect.name == "postgresql":
            ids, states, errors = (list(c) for c in zip(*outcomes, strict=True))
            self._conn.exec_driver_sql(_SETTLE_PG, (now, ids, states, errors, ids))
            return
        params = [{"b_id": i, "b_state": s, "b_error": e, "b_now": now} for i, s, e in outcomes]
        if params:
            stmt = (
                update(sends)
                .where(sends.c.id == bindparam("b_id"))
                .values(state=bindparam("b_state"), error=bindparam("b_error"), updated_at=bindparam("b_now"))
            )
            self._conn.execute(stmt, params)

    def bounce(self, send_row_id: int, state: str, error: str, *, now: float) -> bool:
        """A bounce reported after the message was handed over: the row becomes `state` (`bounced` or
        `soft_bounced`); False when that is known already (a repeated report: a soft bounce after any
        bounce, a bounce after a bounce) or the row is not an e-mail."""
        result = self._conn.execute(
            update(sends)
            .where(
                sends.c.id == send_row_id,
                sends.c.channel == "email",
                sends.c.state.not_in(("bounced",) if state == "bounced" else ("bounced", "soft_bounced")),
            )
            .values(state=state, error=error[:1000], updated_at=now)
        )
        return result.rowcount == 1

    def suppress(self, workspace_id: str, address: str, reason: str, send_row_id: int, *, now: float) -> None:
        """Mark an address as unreachable (it bounced for good): later sends skip it."""
        self._conn.execute(
            insert_for(self._conn, suppressions)
            .values(workspace_id=workspace_id, address=address.lower(), reason=reason[:1000],
                    send_row_id=send_row_id, created_at=now)
            .on_conflict_do_nothing(index_elements=["workspace_id", "address"])
        )  # fmt: skip

    def suppressed(self, workspace_id: str, addresses: Sequence[str]) -> set[str]:
        """Which of these addresses (lower case) bounced for good."""
        wanted = sorted({a.lower() for a in addresses})
        if not wanted:
            return set()
        c = suppressions.c
        stmt = select(c.address).where(c.workspace_id == workspace_id, c.address.in_(wanted))
        return {str(a) for a in self._conn.execute(stmt).scalars()}

    def mark_stale(self, program_id: str, dispatch_id: str, *, before: float, now: float) -> int:
        """Rows left `sending` by a worker that died: the message may or may not have left (`unknown`)."""
        result = self._conn.execute(
            update(sends)
            .where(
                sends.c.program_id == program_id,
                sends.c.dispatch_id == dispatch_id,
                sends.c.state == "sending",
                sends.c.updated_at < before,
            )
            .values(state="unknown", error="the worker stopped before the server answered", updated_at=now)
        )
        return int(result.rowcount)

    def get(self, send_row_id: int) -> SendRow | None:
        """One ledger row."""
        row = self._conn.execute(select(sends).where(sends.c.id == send_row_id)).first()
        return _row(row) if row else None

    def touch(self, send_row_id: int, column: str, *, now: float) -> bool:
        """Set `opened_at`/`clicked_at`/`unsubscribed_at`/`converted_at` once; True the first time."""
        assert column in _TOUCHABLE
        col = sends.c[column]
        result = self._conn.execute(
            update(sends).where(sends.c.id == send_row_id, col.is_(None)).values({column: now})
        )
        return result.rowcount == 1

    def recent_counts(self, workspace_id: str, nums: list[int], channel: str, since: float) -> dict[int, int]:
        """Messages each user received on `channel` since `since` (for frequency caps)."""
        if not nums:
            return {}
        stmt = (
            select(sends.c.user_num, func.count())
            .where(
                sends.c.workspace_id == workspace_id,
                sends.c.user_num.in_(nums),
                sends.c.channel == channel,
                sends.c.created_at >= since,
                sends.c.state.in_(("sending", "delivered", "unknown")),
            )
            .group_by(sends.c.user_num)
        )
        return {int(n): int(k) for n, k in self._conn.execute(stmt)}

    def convertible(
        self, workspace_id: str, user_num: int, program_ids: list[str], since: float
    ) -> list[SendRow]:
        """The user's delivered, not yet converted messages of these programs sent since `since`."""
        stmt = (
            select(sends)
            .where(
                sends.c.workspace_id == workspace_id,
                sends.c.user_num == user_num,
                sends.c.program_id.in_(program_ids),
                sends.c.created_at >= since,
                sends.c.converted_at.is_(None),
                sends.c.state == "delivered",
            )
            .order_by(sends.c.id.desc())
        )
        return [_row(r) for r in self._conn.execute(stmt)]

    def take_rate(self, program_id: str, minute: int, wanted: int, limit: int) -> int:
        """Take up to `wanted` of the program's `limit` messages for this minute; return how many."""
        self._conn.execute(
            insert_for(self._conn, rates)
            .values(program_id=program_id, minute=minute, count=0)
            .on_conflict_do_nothing(index_elements=["program_id", "minute"])
        )
        used = self._conn.execute(
            select(rates.c.count).where(rates.c.program_id == program_id, rates.c.minute == minute)
        ).scalar_one()
        granted = max(0, min(wanted, limit - int(used)))
        if granted:
            self._conn.execute(
                update(rates)
                .where(rates.c.program_id == program_id, rates.c.minute == minute)
                .values(count=rates.c.count + granted)
            )
        return granted

    def stats(self, program_id: str) -> dict[str, dict[str, int]]:
        """Per step: messages by state and the opened, clicked, unsubscribed and converted counts."""
        c = sends.c
        stmt = (
            select(
                c.step_id,
                c.state,
                func.count(),
                func.count(c.opened_at),
                func.count(c.clicked_at),
                func.count(c.unsubscribed_at),
                func.count(c.converted_at),
            )
            .where(c.program_id == program_id)
            .group_by(c.step_id, c.state)
        )
        out: dict[str, dict[str, int]] = {}
        for step, state, n, opened, clicked, unsub, converted in self._conn.execute(stmt):
            s = out.setdefault(step, {})
            s[state] = s.get(state, 0) + int(n)
            for name, value in (
                ("opened", opened),
                ("clicked", clicked),
                ("unsubscribed", unsub),
                ("converted", converted),
            ):
                s[name] = s.get(name, 0) + int(value)
        return out

    def for_user(
        self, workspace_id: str, user_num: int, *, before: tuple[float, int] | None, limit: int
    ) -> list[ReceivedRow]:
        """The user's messages, newest first, older than `before` (time, id); on `ix_msg_sends_user`."""
        c = sends.c
        stmt = select(c.id, c.program_id, c.step_id, c.channel, c.state, c.created_at, c.opened_at,
                      c.clicked_at, c.unsubscribed_at, c.converted_at).where(
            c.workspace_id == workspace_id, c.user_num == user_num
        )  # fmt: skip
        if before is not None:
            at, row_id = before
            stmt = stmt.where(or_(c.created_at < at, and_(c.created_at == at, c.id < row_id)))
        stmt = stmt.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        return [ReceivedRow(**r._mapping) for r in self._conn.execute(stmt)]
