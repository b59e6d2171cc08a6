"""SQL repository for users, aliases, devices, custom events and purchases.

Every method is set-based: one query loads all the users a request names, and a change is
written with a handful of multi-row statements whatever its size. On PostgreSQL a writer takes a
transaction-scoped advisory lock per identifier it names (so two requests never race to create
the same external id, alias, device, email or phone user) and row locks on the users it loaded;
writers of different users run in parallel. Lookups pass their values as one array parameter
and the engine plans every execution afresh (`plan_cache_mode`), so plans follow the table as it
grows whenever statistics were last refreshed. On SQLite the unit of work's writer lock suffices.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import msgspec
from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    delete,
    func,
    select,
    tuple_,
    update,
)

from cohorthub.errors import ResourceLocked
from cohorthub.identity.errors import UsersLocked
from cohorthub.identity.model import STANDARD_FIELDS, Profile, UserAlias, encode_custom
from cohorthub.identity.ports import Activity, NewUser, Summary
from cohorthub.identity.workset import ChangeSet, Loaded, Lookup
from cohorthub.store.new_users import insert_new_users
from cohorthub.store.pg_rows import insert_arrays, update_arrays
from cohorthub.store.rows import insert_many
from cohorthub.store.sqlite_users import insert_users, update_users
from cohorthub.store.statistics import note_inserted
from cohorthub.store.tables import custom_events, purchases, user_aliases, user_devices, users

_OWNED = (user_aliases, user_devices, custom_events, purchases)


_decode_custom = msgspec.json.Decoder(dict[str, Any]).decode


def _json(value: Any) -> str:
    if not value:  # most events and purchases have no properties
        return "{}"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _lock_key(workspace_id: str, kind: str, value: str) -> int:
    digest = hashlib.blake2b(f"{workspace_id}\0{kind}\0{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_keys(workspace_id: str, lookup: Lookup) -> list[int]:
    """The advisory lock keys of every identifier a lookup names that a write could create, sorted."""
    named: list[tuple[str, str]] = [("external_id", v) for v in lookup.external_ids]
    named += [("email", v) for v in lookup.emails]
    named += [("phone", v) for v in lookup.phones]
    named += [("device_id", v) for v in lookup.device_ids]
    named += [("user_alias", f"{a.label}\0{a.name}") for a in lookup.aliases]
    return sorted({_lock_key(workspace_id, kind, value) for kind, value in named})


_USER_COLUMNS = ", ".join(c.name for c in users.columns)
_AT = {c.name: i for i, c in enumerate(users.columns)}
_NUM, _BRAZE_ID, _EXTERNAL_ID = _AT["num"], _AT["braze_id"], _AT["external_id"]
_CREATED_AT, _UPDATED_AT, _CUSTOM = _AT["created_at"], _AT["updated_at"], _AT["custom_attributes"]
_STANDARD = [_AT[name] for name in STANDARD_FIELDS]


class SqlUserRepository:
    """Users, aliases, devices, custom events and purchases in SQL."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._pg = conn.dialect.name == "postgresql"
        #: SQLite: each loaded user's row as `_WRITTEN` reads it (an update writes only what changed).
        self._loaded: dict[int, tuple[Any, ...]] = {}
        #: PostgreSQL: the external id of each user loaded for writing, as loaded (see `_pg_rekeyed`).
        self._loaded_keys: dict[int, str | None] = {}

    # -- reading -------------------------------------------------------------------------------
    def load(self, workspace_id: str, lookup: Lookup, *, lock: bool = False) -> Loaded:
        """Every user any identifier of `lookup` names, with all their aliases, and the devices' owners.

        `lock` (for a write): on PostgreSQL, first take a transaction lock per identifier (so
        two writers never create the same one), then lock the users found (`FOR NO KEY UPDATE`,
        in number order), so writers of different users proceed in parallel and writers of the
        same user queue. On SQLite the unit of work already holds the database's write lock.
        """
        if lock and self._pg:
            self._lock_identifiers(lock_keys(workspace_id, lookup))
        sql, params = (self._pg_users_named if self._pg else self._sqlite_users_named)(workspace_id, lookup)
        if not sql:
            return Loaded([], {})
        if lock and self._pg:
            sql += " FOR NO KEY UPDATE"
        rows = self._conn.exec_driver_sql(sql, tuple(params)).all()
        profiles = [_profile(r) for r in rows]
        if not self._pg:
            self._loaded.update((p.num, _as_written(r)) for p, r in zip(profiles, rows, strict=True))
        if lock and self._pg:
            self._loaded_keys.update((p.num, p.external_id) for p in profiles)
        by_num = {p.num: p for p in profiles}
        if by_num:
            alias_params: list[Any] = []
            where = self._in("user_num", sorted(by_num), alias_params)
            sql = f"SELECT user_num, alias_label, alias_name FROM user_aliases WHERE {where}"
            for num, label, name in self._conn.exec_driver_sql(sql, tuple(alias_params)):
                by_num[num].aliases.add(UserAlias(label, name))
        # The named devices' owners, and the devices of anonymous users (a merge names one of them).
        anonymous = sorted(p.num for p in profiles if p.anonymous)
        devices = self._device_owners(workspace_id, sorted(lookup.device_ids), anonymous)
        return Loaded(profiles, devices)

    def _sqlite_users_named(self, workspace_id: str, lookup: Lookup) -> tuple[str, list[Any]]:
        """One query: the workspace's users matching any identifier of the lookup ("" for none)."""
        conditions: list[str] = []
        params: list[Any] = [workspace_id]
        for column, values in _columns(lookup):
            conditions.append(self._in(column, values, params))
        if lookup.aliases:
            pairs = sorted((a.label, a.name) for a in lookup.aliases)
            params.append(workspace_id)
            conditions.append(
                "num IN (SELECT user_num FROM user_aliases WHERE workspace_id = ? AND "
                f"{self._pairs_in(pairs, params)})"
            )
        if lookup.device_ids:
            params.append(workspace_id)
            conditions.append(
                "num IN (SELECT user_num FROM user_devices WHERE workspace_id = ? AND "
                f"{self._in('device_id', sorted(lookup.device_ids), params)})"
            )
        if not conditions:
            return "", params
        where = " OR ".join(conditions)
        return f"SELECT {_USER_COLUMNS} FROM users WHERE workspace_id = ? AND ({where}) ORDER BY num", params

    def _pg_users_named(self, workspace_id: str, lookup: Lookup) -> tuple[str, list[Any]]:
        """One query: each kind of identifier is its own index lookup, then the users are read by number.

        A single `OR` of the kinds let a planner without fresh statistics (autovacuum off or late,
        a table grown from empty) scan every user of the workspace, once per request or per row.
        """
        params: list[Any] = []
        found: list[str] = []
        for column, values in _columns(lookup):
            params += [workspace_id, values]
            found.append(f"SELECT num FROM users WHERE workspace_id = %s AND {column} = ANY(%b)")
        if lookup.aliases:
            pairs = sorted((a.label, a.name) for a in lookup.aliases)
            params += [[p[0] for p in pairs], [p[1] for p in pairs], workspace_id]
            # LATERAL … OFFSET 0: one primary-key probe per alias, whatever the statistics say.
            found.append(
                "SELECT a.user_num FROM unnest(%b::text[], %b::text[]) AS p(label, name) CROSS JOIN "
                "LATERAL (SELECT user_num FROM user_aliases WHERE workspace_id = %s AND "
                "alias_label = p.label AND alias_name = p.name OFFSET 0) AS a"
            )
        if lookup.device_ids:
            params += [workspace_id, sorted(lookup.device_ids)]
            found.append("SELECT user_num FROM user_devices WHERE workspace_id = %s AND device_id = ANY(%b)")
        if not found:
            return "", params
        nums = " UNION ".join(found)
        return f"SELECT {_USER_COLUMNS} FROM users WHERE num = ANY(ARRAY({nums})) ORDER BY num", params

    def _device_owners(
        self, workspace_id: str, device_ids: list[str], user_nums: list[int]
    ) -> dict[str, int]:
        """The owner of each named device, and every device of the given users."""
        params: list[Any] = []
        found: list[str] = []
        if device_ids:
            params.append(workspace_id)
            found.append(f"workspace_id = {self._mark} AND {self._in('device_id', device_ids, params)}")
        if user_nums:
            found.append(self._in("user_num", user_nums, params))
        if not found:
            return {}
        sql = " UNION ".join(f"SELECT device_id, user_num FROM user_devices WHERE {f}" for f in found)
        return dict(self._conn.exec_driver_sql(sql, tuple(params)).all())

    def _lock_identifiers(self, keys: list[int]) -> None:
        if not keys:
            return
        try:
            self._conn.exec_driver_sql(
                "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%b::bigint[]) AS k", (keys,)
            )
        except ResourceLocked as exc:
            raise UsersLocked("Some of these users are locked by another writer; retry") from exc

    @property
    def _mark(self) -> str:
        return "%s" if self._pg else "?"

    def _in(self, column: str, values: list[Any], params: list[Any]) -> str:
        """`column` is one of `values`: one array parameter on PostgreSQL (one plan whatever the count)."""
        if self._pg:
            params.append(values)
            return f"{column} = ANY(%b)"
        params.extend(values)
        return f"{column} IN ({', '.join('?' * len(values))})"

    def _pairs_in(self, pairs: list[tuple[str, str]], params: list[Any]) -> str:
        if self._pg:
            params.extend(([p[0] for p in pairs], [p[1] for p in pairs]))
            return "(alias_label, alias_name) IN (SELECT * FROM unnest(%b::text[], %b::text[]))"
        params.extend(v for pair in pairs for v in pair)
        return f"(alias_label, alias_name) IN (VALUES {', '.join(['(?, ?)'] * len(pairs))})"

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
        if self._pg:
            orphans = [m.orphan.num for m in changes.merges]
            self._pg_lock_exclusive([*orphans, *(p.num for p in self._pg_rekeyed(changes.updated))])
        stored = self._insert_users(workspace_id, changes.created)
        note_inserted(self._conn, len(changes.created) + len(changes.devices) + len(changes.new_aliases))

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
        if self._pg:
            self._pg_lock_exclusive(nums)
        for table in _OWNED:
            self._conn.execute(delete(table).where(table.c.user_num.in_(nums)))
        result = self._conn.execute(
            delete(users).where(users.c.workspace_id == workspace_id, users.c.num.in_(nums))
        )
        return int(result.rowcount)

    # PostgreSQL lock order. An import share-locks its matched users (`FOR KEY SHARE`) in number
    # order (store/cohorts.py). A writer loads its users `FOR NO KEY UPDATE`, in number order,
    # which an import's share lock does not conflict with; a write that deletes a user or changes
    # its external id needs `FOR UPDATE`, which does: those users are locked so first, all at once
    # and in number order, before any write. An `UPDATE` naming `external_id` among its columns
    # locks every row it updates `FOR UPDATE` when the table has a row trigger (the change stamp),
    # even if the value is unchanged: such an update of a track request, locking in its join's
    # order, deadlocked with imports of the same users. So only re-keyed users' rows name it.

    def _pg_rekeyed(self, updated: list[Profile]) -> list[Profile]:
        """The updated users whose external id is not the one loaded (or who were not loaded)."""
        missing = object()
        return [p for p in updated if self._loaded_keys.get(p.num, missing) != p.external_id]

    def _pg_lock_exclusive(self, nums: list[int]) -> None:
        """Lock these users `FOR UPDATE`, one at a time in number order."""
        if not nums:
            return
        sql = (
            "SELECT count(*) FROM unnest(%b::bigint[]) AS t(n) CROSS JOIN LATERAL "
            "(SELECT 1 FROM users WHERE num = t.n OFFSET 0 FOR UPDATE) AS l"
        )
        self._conn.exec_driver_sql(sql, (sorted(set(nums)),))

    def _insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Many rows: multi-row statements on SQLite, one statement of column arrays on PostgreSQL."""
        if not rows:
            return
        names = list(rows[0])
        values = [tuple(r[n] for n in names) for r in rows]
        if not self._pg:
            insert_many(self._conn, table.name, names, values)
            return
        insert_arrays(self._conn, table, names, values)

    def _move(self, table: Table, moves: list[dict[str, int]]) -> None:
        stmt = (
            update(table).where(table.c.user_num == bindparam("orphan")).values(user_num=bindparam("target"))
        )
        self._conn.execute(stmt, moves)

    def _stamps(self, count: int) -> list[int]:
        """SQLite: `count` change stamps taken from the sequence at once (the writer holds the lock).

        Rows written with a fresh stamp skip the per-row stamping trigger (migration 0012).
        PostgreSQL: none, its trigger stamps each row from the shared sequence.
        """
        if self._pg or not count:
            return []
        sql = "UPDATE user_change_seq SET value = value + ? RETURNING value"
        top = int(self._conn.exec_driver_sql(sql, (count,)).scalar_one())
        return list(range(top - count + 1, top + 1))

    def _insert_users(self, workspace_id: str, created: list[Profile]) -> dict[int, int]:
        """Insert new users with multi-row VALUES … RETURNING; map each to its stored number."""
        if self._pg and created:  # one statement of column arrays (pg_rows)
            names = ["workspace_id", "braze_id", "created_at", *_ROW_COLUMNS]
            rows = [(workspace_id, p.braze_id, p.created_at, *_values(p)) for p in created]
            numbers = dict(insert_arrays(self._conn, users, names, rows, returning="braze_id, num"))
            return {p.num: int(numbers[p.braze_id]) for p in created}
        if not created:
            return {}
        stamps = self._stamps(len(created))
        names = ["workspace_id", "braze_id", "created_at", *_ROW_COLUMNS, *(["change_id"] if stamps else [])]
        rows = [
            (workspace_id, p.braze_id, p.created_at, *_values(p), *stamps[i : i + 1])
            for i, p in enumerate(created)
        ]
        by_braze = insert_users(self._conn, names, rows, optional=_NULLABLE_AT)
        return {p.num: int(by_braze[p.braze_id]) for p in created}

    def _update_users(self, updated: list[Profile]) -> None:
        """Rewrite changed users in one `UPDATE … FROM`: `(VALUES …)` on SQLite, `unnest(…)` on PostgreSQL.

        On SQLite a table with triggers pays for a statement journal per statement, so one statement
        per row cost several times the row itself.
        """
        if not updated:
            return
        if self._pg:  # statements of column arrays (pg_rows); `updated` names each user once
            rekeyed = {p.num for p in self._pg_rekeyed(updated)}
            rows = [(*_values(p), p.num) for p in updated]
            update_arrays(self._conn, users, "num", _ROW_COLUMNS, [r for r in rows if r[-1] in rekeyed])
            kept = [r[1:] for r in rows if r[-1] not in rekeyed]  # without external_id
            update_arrays(self._conn, users, "num", _ROW_COLUMNS[1:], kept)
            return
        stamps = self._stamps(len(updated))
        rows = [(*_values(p), stamp) for p, stamp in zip(updated, stamps, strict=True)]
        nums = [p.num for p in updated]
        update_users(self._conn, _WRITTEN, rows, nums, loaded=self._loaded, always=_ALWAYS_WRITTEN)
        self._loaded.update(zip(nums, rows, strict=True))

    # -- bulk import: new users with nothing else to write (store/new_users.py) -----------------
    def insert_new(self, workspace_id: str, new: Sequence[NewUser], *, now: float) -> None:
        """Insert users no one has yet and nothing else names (a bulk import's new users)."""
        insert_new_users(self._conn, workspace_id, new, now=now, stamps=self._stamps)


#: Columns a profile writes besides its identity (`workspace_id`, `braze_id`, `created_at`).
_ROW_COLUMNS = ("external_id", *STANDARD_FIELDS, "custom_attributes", "updated_at")
#: SQLite: the columns an update of users writes (those that changed, and `_ALWAYS_WRITTEN`).
_WRITTEN = (*_ROW_COLUMNS, "change_id")
_ALWAYS_WRITTEN = (_WRITTEN.index("updated_at"), _WRITTEN.index("change_id"))
_as_written = itemgetter(*(_AT[name] for name in _WRITTEN))
#: SQLite: positions of a new user's row (`_insert_users`) left out when no row of a statement sets them.
_NULLABLE_AT = tuple(range(3, 3 + len(_ROW_COLUMNS) - 2))


def _values(p: Profile) -> tuple[Any, ...]:
    get = p.fields.get
    custom = encode_custom(p.custom).decode()
    return (p.external_id, *map(get, STANDARD_FIELDS), custom, p.updated_at)


def _columns(lookup: Lookup) -> list[tuple[str, list[str]]]:
    """The users columns a lookup names values of, with the values sorted."""
    named = (
        ("external_id", lookup.external_ids),
        ("braze_id", lookup.braze_ids),
        ("email", lookup.emails),
        ("phone", lookup.phones),
    )
    return [(column, sorted(values)) for column, values in named if values]


def _profile(row: Any) -> Profile:
    # By position: a row read by `_USER_COLUMNS` (attribute access by name cost more than the rest).
    return Profile(
        num=int(row[_NUM]),
        braze_id=row[_BRAZE_ID],
        external_id=row[_EXTERNAL_ID],
        created_at=row[_CREATED_AT],
        updated_at=row[_UPDATED_AT],
        fields=dict(zip(STANDARD_FIELDS, itemgetter(*_STANDARD)(row), strict=True)),
        custom=_custom(row[_CUSTOM] or "{}"),
    )


def _custom(text: str) -> dict[str, Any]:
    try:
        return _decode_custom(text)
    except msgspec.DecodeError:  # written before values were checked (a NaN, a huge integer)
        value: dict[str, Any] = json.loads(text)
        return value
