"""What messaging reads of users, cohort changes and custom events; its cursors and secret."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import BigInteger, Connection, and_, any_, bindparam, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY

from cohorthub.messaging.ports import EventRow, UserRow
from cohorthub.store.messaging.schema import cursors, insert_for, settings
from cohorthub.store.tables import cohort_changes, cohorts, custom_events, purchases, user_aliases, users

_decode = msgspec.json.Decoder()
_STANDARD = ("first_name", "last_name", "gender", "dob", "country", "home_city", "language", "phone")
#: By primary key only: with a workspace condition too, a planner without statistics (a freshly filled
#: table) scans the whole workspace for every batch; the workspace is checked on the rows instead.
_USERS_SQL = (
    f"SELECT workspace_id, num, braze_id, external_id, email, email_subscribe, time_zone, custom_attributes, "
    f"{', '.join(_STANDARD)} FROM {users.name} WHERE num {{among}} ORDER BY num"
)


class SqlFactStore:
    """Reads of core tables, and messaging's own cursors."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def users(self, workspace_id: str, nums: list[int]) -> list[UserRow]:
        """The users with these numbers (missing ones are left out), in number order.

        One plain statement per 5,000 users (a send batch reads 500): its text is the same for every
        batch of a size, and rows come back as tuples (the per-row cost matters at campaign scale)."""
        out: list[UserRow] = []
        pg = self._conn.dialect.name == "postgresql"
        for start in range(0, len(nums), 5000):
            chunk = nums[start : start + 5000]
            if pg:
                rows = self._conn.exec_driver_sql(_USERS_SQL.format(among="= ANY(%s::bigint[])"), (chunk,))
            else:
                marks = ",".join("?" * len(chunk))
                rows = self._conn.exec_driver_sql(_USERS_SQL.format(among=f"IN ({marks})"), tuple(chunk))
            for ws, num, braze_id, external_id, email, subscribe, zone, custom, *standard in rows:
                if ws != workspace_id:
                    continue
                out.append(
                    UserRow(
                        num=num,
                        braze_id=braze_id,
                        external_id=external_id,
                        email=email,
                        email_subscribe=subscribe,
                        time_zone=zone,
                        attributes=dict(zip(_STANDARD, standard, strict=True)),
                        custom_attributes=_decode.decode(custom or "{}"),
                    )
                )
        return out

    def _among(self, column: Any, values: list[int]) -> Any:
        """`column IN values`; on PostgreSQL `= ANY(array)`, one statement text whatever the count."""
        if self._conn.dialect.name == "postgresql":
            return column == any_(bindparam("among", values, type_=ARRAY(BigInteger)))
        return column.in_(values)

    def nums_by_external_ids(self, workspace_id: str, ids: list[str]) -> dict[str, int]:
        """User numbers of these external ids (unknown ones are left out)."""
        if not ids:
            return {}
        stmt = select(users.c.external_id, users.c.num).where(
            users.c.workspace_id == workspace_id, users.c.external_id.in_(ids)
        )
        return {str(e): int(n) for e, n in self._conn.execute(stmt)}

    def nums_by_braze_ids(self, workspace_id: str, ids: list[str]) -> dict[str, int]:
        """User numbers of these braze ids (unknown ones are left out)."""
        if not ids:
            return {}
        stmt = select(users.c.braze_id, users.c.num).where(
            users.c.workspace_id == workspace_id, users.c.braze_id.in_(ids)
        )
        return {str(b): int(n) for b, n in self._conn.execute(stmt)}

    def nums_by_aliases(
        self, workspace_id: str, aliases: list[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """User numbers of these (alias_label, alias_name) pairs."""
        if not aliases:
            return {}
        a = user_aliases.c
        stmt = select(a.alias_label, a.alias_name, a.user_num).where(
            a.workspace_id == workspace_id, tuple_(a.alias_label, a.alias_name).in_(aliases)
        )
        return {(str(label), str(name)): int(n) for label, name, n in self._conn.execute(stmt)}

    def unsubscribe(self, user_num: int, *, now: float) -> None:
        """Set the user's global e-mail state to unsubscribed."""
        self._conn.execute(
            update(users)
            .where(users.c.num == user_num)
            .values(email_subscribe="unsubscribed", updated_at=now)
        )

    def cohort_entries_after(
        self, workspace_id: str, partner: str, cohort_id: str, after: int, limit: int
    ) -> list[tuple[int, int]]:
        """(change id, user number) of users who entered the cohort, after change `after`."""
        ch, co = cohort_changes.c, cohorts.c
        stmt = (
            select(ch.id, ch.user_num)
            .join(cohorts, co.pk == ch.cohort_pk)
            .where(
                and_(
                    co.workspace_id == workspace_id,
                    co.partner == partner,
                    co.cohort_id == cohort_id,
                    ch.id > after,
                    ch.entered.is_(True),
                )
            )
            .order_by(ch.id)
            .limit(limit)
        )
        return [(int(i), int(n)) for i, n in self._conn.execute(stmt)]

    def events_after(self, after: int, limit: int) -> list[EventRow]:
        """Custom events recorded after id `after` (all workspaces), oldest first."""
        e = custom_events.c
        stmt = (
            select(e.id, e.workspace_id, e.user_num, e.name, e.time, e.properties)
            .where(e.id > after)
            .order_by(e.id)
            .limit(limit)
        )
        return [
            EventRow(
                int(r.id),
                r.workspace_id,
                int(r.user_num),
                r.name,
                float(r.time),
                _decode.decode(r.properties or "{}"),
            )
            for r in self._conn.execute(stmt)
        ]

    def purchases_after(self, after: int, limit: int) -> list[EventRow]:
        """Purchases recorded after id `after` (all workspaces), oldest first, as events named by product."""
        p = purchases.c
        stmt = (
            select(p.id, p.workspace_id, p.user_num, p.product_id, p.time, p.properties,
                   p.price, p.currency, p.quantity)
            .where(p.id > after)
            .order_by(p.id)
            .limit(limit)
        )  # fmt: skip
        return [
            EventRow(
                int(r.id),
                r.workspace_id,
                int(r.user_num),
                r.product_id,
                float(r.time),
                {**_decode.decode(r.properties or "{}"), "product_id": r.product_id, "price": r.price,
                 "currency": r.currency, "quantity": r.quantity},
                kind="purchase",
            )
            for r in self._conn.execute(stmt)
        ]  # fmt: skip

    def max_purchase_id(self) -> int:
        """The newest purchase id."""
        return int(self._conn.execute(select(func.max(purchases.c.id))).scalar() or 0)

    def performed(self, user_num: int, name: str, since: float, *, purchase: bool = False) -> bool:
        """Did the user perform the custom event since `since` (`purchase`: buy the product, "*" any)."""
        if purchase:
            p = purchases.c
            bought = select(p.id).where(p.user_num == user_num, p.time >= since)
            stmt = (bought if name == "*" else bought.where(p.product_id == name)).limit(1)
        else:
            e = custom_events.c
            stmt = select(e.id).where(e.user_num == user_num, e.name == name, e.time >= since).limit(1)
        return self._conn.execute(stmt).first() is not None

    def max_ids(self) -> tuple[int, int]:
        """The newest cohort change id and custom event id."""
        changes = self._conn.execute(select(func.max(cohort_changes.c.id))).scalar() or 0
        events = self._conn.execute(select(func.max(custom_events.c.id))).scalar() or 0
        return int(changes), int(events)

    def cursor(self, name: str) -> int | None:
        """A stored position."""
        value = self._conn.execute(select(cursors.c.value).where(cursors.c.name == name)).scalar()
        return int(value) if value is not None else None

    def set_cursor(self, name: str, value: int) -> None:
        """Store a position."""
        stmt = insert_for(self._conn, cursors).values(name=name, value=value)
        self._conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"value": value}))

    def state(self, name: str) -> str | None:
        """A stored value of messaging's own (e.g. a Canvas's last segment membership)."""
        value = self._conn.execute(select(settings.c.value).where(settings.c.name == name)).scalar()
        return str(value) if value is not None else None

    def set_state(self, name: str, value: str) -> None:
        """Store a value of messaging's own."""
        stmt = insert_for(self._conn, settings).values(name=name, value=value)
        self._conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"value": value}))

    def secret(self, new: str) -> str:
        """The tracking-link signing secret, stored on first use (`new` is used then)."""
        stmt = insert_for(self._conn, settings).values(name="tracking_secret", value=new)
        self._conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
        found = self._conn.execute(
            select(settings.c.value).where(settings.c.name == "tracking_secret")
        ).scalar()
        return str(found)
