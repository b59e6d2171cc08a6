"""SQL repository for users, aliases, devices, custom events and purchases.

Every method is set-based: one query loads all the users a request names, and a change is
written with a handful of multi-row statements whatever its size. Identity writers of one
workspace serialize on a transaction-scoped advisory lock on PostgreSQL (the unit of work's
writer lock on SQLite), so two requests never race to create the same external id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)

from cohorthub.errors import ResourceLocked
from cohorthub.identity.errors import UsersLocked
from cohorthub.identity.model import STANDARD_FIELDS, Profile, UserAlias
from cohorthub.identity.ports import Activity, Summary
from cohorthub.identity.workset import ChangeSet, Loaded, Lookup
from cohorthub.store.tables import custom_events, purchases, user_aliases, user_devices, users

_OWNED = (user_aliases, user_devices, custom_events, purchases)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _lock_key(workspace_id: str) -> int:
    digest = hashlib.sha256(f"cohorthub.identity:{workspace_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SqlUserRepository:
    """Users, aliases, devices, custom events and purchases in SQL."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock(self, workspace_id: str) -> None:
        """Serialize identity writers of one workspace until the transaction ends."""
        if self._conn.dialect.name != "postgresql":
            return  # SQLite writers already hold the database lock
        try:
            self._conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(workspace_id)})
        except ResourceLocked as exc:
            raise UsersLocked("Users of this workspace are locked by another writer; retry") from exc

    # -- reading -------------------------------------------------------------------------------
    def load(self, workspace_id: str, lookup: Lookup) -> Loaded:
        """Every user any identifier of `lookup` names, with all their aliases, and the devices' owners."""
        conditions: list[ColumnElement[bool]] = []
        for column, values in (
            (users.c.external_id, lookup.external_ids),
            (users.c.braze_id, lookup.braze_ids),
            (users.c.email, lookup.emails),
            (users.c.phone, lookup.phones),
        ):
            if values:
                conditions.append(column.in_(sorted(values)))
        if lookup.aliases:
            conditions.append(users.c.num.in_(self._alias_owners(workspace_id, lookup.aliases)))
        if lookup.device_ids:
            owners = select(user_devices.c.user_num).where(
                user_devices.c.workspace_id == workspace_id,
                user_devices.c.device_id.in_(sorted(lookup.device_ids)),
            )
            conditions.append(users.c.num.in_(owners))
        if not conditions:
            return Loaded([], {})
        rows = self._conn.execute(
            select(users).where(users.c.workspace_id == workspace_id, or_(*conditions)).order_by(users.c.num)
        ).all()
        profiles = [_profile(r) for r in rows]
        by_num = {p.num: p for p in profiles}
        if by_num:
            for alias_row in self._conn.execute(
                select(user_aliases).where(user_aliases.c.user_num.in_(sorted(by_num)))
            ):
                by_num[alias_row.user_num].aliases.add(UserAlias(alias_row.alias_label, alias_row.alias_name))
        # The named devices' owners, and the devices of anonymous users (a merge names one of them).
        named: list[ColumnElement[bool]] = []
        if lookup.device_ids:
            named.append(user_devices.c.device_id.in_(sorted(lookup.device_ids)))
        if anonymous := sorted(p.num for p in profiles if p.anonymous):
            named.append(user_devices.c.user_num.in_(anonymous))
        devices: dict[str, int] = {}
        if named:
            devices = {
                r.device_id: r.user_num
                for r in self._conn.execute(
                    select(user_devices.c.device_id, user_devices.c.user_num).where(
                        user_devices.c.workspace_id == workspace_id, or_(*named)
                    )
                )
            }
        return Loaded(profiles, devices)

    def _alias_owners(self, workspace_id: str, aliases: Iterable[UserAlias]) -> Any:
        pairs = sorted((a.label, a.name) for a in aliases)
        return select(user_aliases.c.user_num).where(
            user_aliases.c.workspace_id == workspace_id,
            tuple_(user_aliases.c.alias_label, user_aliases.c.alias_name).in_(pairs),
        )

    def activity(self, workspace_id: str, user_nums: list[int]) -> dict[int, Activity]:
        """Devices and event/purchase summaries of each user."""
        result = {n: Activity() for n in user_nums}
        if not user_nums:
            return result
        nums = sorted(user_nums)
        for r in self._conn.execute(
            select(user_devices.c.user_num, user_devices.c.device_id)
            .where(user_devices.c.user_num.in_(nums))
            .order_by(user_devices.c.device_id)
        ):
            result[r.user_num].devices.append(r.device_id)
        for table, name, target in (
            (custom_events, "name", "events"),
            (purchases, "product_id", "purchases"),
        ):
            column = table.c[name]
            stmt = (
                select(table.c.user_num, column, func.min(table.c.time), func.max(table.c.time), func.count())
                .where(table.c.user_num.in_(nums))
                .group_by(table.c.user_num, column)
                .order_by(table.c.user_num, column)
            )
            for num, key, first, last, count in self._conn.execute(stmt):
                getattr(result[num], target).append(Summary(key, first, last, count))
        return result

    # -- writing -------------------------------------------------------------------------------
    def apply(self, workspace_id: str, changes: ChangeSet, *, now: float) -> dict[int, int]:
        """Write a change set; return the stored number of each user it created."""
        stored = self._insert_users(workspace_id, changes.created)

        def real(num: int) -> int:
            return stored.get(num, num)

        if changes.merges:
            moves = [{"orphan": m.orphan.num, "target": real(m.target_num)} for m in changes.merges]
            for table in _OWNED:
                self._move(table, moves)
            self._conn.execute(delete(users).where(users.c.num.in_([m["orphan"] for m in moves])))
        if changes.dropped_aliases:
            self._conn.execute(
                delete(user_aliases).where(
                    user_aliases.c.workspace_id == workspace_id,
                    tuple_(user_aliases.c.alias_label, user_aliases.c.alias_name).in_(
                        [(a.label, a.name) for a in changes.dropped_aliases]
                    ),
                )
            )
        self._insert(
            user_aliases,
            [
                {
                    "workspace_id": workspace_id,
                    "alias_label": a.label,
                    "alias_name": a.name,
                    "user_num": real(n),
                }
                for a, n in changes.new_aliases
            ],
        )
        if changes.devices:
            self._conn.execute(
                delete(user_devices).where(
                    user_devices.c.workspace_id == workspace_id,
                    user_devices.c.device_id.in_(sorted(changes.devices)),
                )
            )
            self._insert(
                user_devices,
                [
                    {"workspace_id": workspace_id, "device_id": d, "user_num": real(n)}
                    for d, n in changes.devices.items()
                ],
            )
        self._update_users(changes.updated)
        self._insert(
            custom_events,
            [
                {
                    "workspace_id": workspace_id,
                    "user_num": real(n),
                    "name": e.name,
                    "time": e.time,
                    "properties": _json(e.properties),
                    "app_id": e.app_id,
                }
                for n, e in changes.events
            ],
        )
        self._insert(
            purchases,
            [
                {
                    "workspace_id": workspace_id,
                    "user_num": real(n),
                    "product_id": p.product_id,
                    "currency": p.currency,
                    "price": p.price,
                    "quantity": p.quantity,
                    "time": p.time,
                    "properties": _json(p.properties),
                    "app_id": p.app_id,
                }
                for n, p in changes.purchases
            ],
        )
        return stored

    def delete(self, workspace_id: str, user_nums: list[int]) -> int:
        """Remove users and everything they own; return how many users."""
        nums = sorted(user_nums)
        for table in _OWNED:
            self._conn.execute(delete(table).where(table.c.user_num.in_(nums)))
        result = self._conn.execute(
            delete(users).where(users.c.workspace_id == workspace_id, users.c.num.in_(nums))
        )
        return int(result.rowcount)

    def _insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._conn.execute(insert(table), rows)

    def _move(self, table: Table, moves: list[dict[str, int]]) -> None:
        stmt = (
            update(table).where(table.c.user_num == bindparam("orphan")).values(user_num=bindparam("target"))
        )
        self._conn.execute(stmt, moves)

    def _insert_users(self, workspace_id: str, created: list[Profile]) -> dict[int, int]:
        if not created:
            return {}
        rows = [{"workspace_id": workspace_id, "braze_id": p.braze_id, **_row(p)} for p in created]
        for row, p in zip(rows, created, strict=True):
            row["created_at"] = p.created_at
        result = self._conn.execute(insert(users).returning(users.c.num, sort_by_parameter_order=True), rows)
        return {p.num: int(num) for p, (num,) in zip(created, result.all(), strict=True)}

    def _update_users(self, updated: list[Profile]) -> None:
        if not updated:
            return
        names = ["external_id", *STANDARD_FIELDS, "custom_attributes", "updated_at"]
        stmt = (
            update(users)
            .where(users.c.num == bindparam("v_num"))
            .values({name: bindparam(f"v_{name}") for name in names})
        )
        rows = [{"v_num": p.num, **{f"v_{k}": v for k, v in _row(p).items()}} for p in updated]
        self._conn.execute(stmt, rows)


def _row(p: Profile) -> dict[str, Any]:
    return {
        "external_id": p.external_id,
        **{name: p.get(name) for name in STANDARD_FIELDS},
        "custom_attributes": _json(p.custom),
        "updated_at": p.updated_at,
    }


def _profile(row: Any) -> Profile:
    return Profile(
        num=int(row.num),
        braze_id=row.braze_id,
        external_id=row.external_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        fields={name: getattr(row, name) for name in STANDARD_FIELDS},
        custom=json.loads(row.custom_attributes or "{}"),
    )
