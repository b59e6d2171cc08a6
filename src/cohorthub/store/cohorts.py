"""SQL repository for cohorts, membership chunks and history; it reads the identity tables to match.

Cohort writers serialize on the cohort row: `SELECT … FOR UPDATE` on PostgreSQL (a wait past
`lock_timeout` becomes `ResourceLocked`), the unit of work's writer lock on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, Select, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cohorthub.cohorts.model import Alias, Cohort
from cohorthub.cohorts.ports import LoggedChange
from cohorthub.store.tables import (
    cohort_changes,
    cohort_chunks,
    cohort_import_requests,
    cohorts,
    user_aliases,
    users,
)

# The statements of the import path are built once: building them per request costs more
# Python time than SQLite takes to run them.
_GET = select(cohorts).where(
    cohorts.c.workspace_id == bindparam("b_ws"),
    cohorts.c.partner == bindparam("b_partner"),
    cohorts.c.cohort_id == bindparam("b_cohort_id"),
)
_NEW_COHORT = {
    "name": bindparam("b_cohort_id"), "named": False, "created_at": bindparam("b_now"),
    "updated_at": bindparam("b_now"), "version": 0, "size": 0, "snapshot_version": 0, "import_requests": 0,
    "identifiers_matched": 0, "identifiers_unmatched": 0, "unmatched_sample": "[]",
    "workspace_id": bindparam("b_ws"), "partner": bindparam("b_partner"),
    "cohort_id": bindparam("b_cohort_id"),
}  # fmt: skip
_ENSURE = {
    name: dialect_insert(cohorts)
    .values(**_NEW_COHORT)
    .on_conflict_do_nothing(index_elements=["workspace_id", "partner", "cohort_id"])
    for name, dialect_insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_SET_MEMBERSHIP = (
    update(cohorts)
    .where(cohorts.c.pk == bindparam("b_pk"))
    .values(version=bindparam("b_version"), size=bindparam("b_size"), updated_at=bindparam("b_now"))
)
_RECORD_REQUEST = insert(cohort_import_requests)
_RECORD_DIAGNOSTICS = (
    update(cohorts)
    .where(cohorts.c.pk == bindparam("b_pk"))
    .values(
        last_import_at=bindparam("b_now"),
        import_requests=cohorts.c.import_requests + 1,
        identifiers_matched=cohorts.c.identifiers_matched + bindparam("b_matched"),
        identifiers_unmatched=cohorts.c.identifiers_unmatched + bindparam("b_unmatched"),
        unmatched_sample=bindparam("b_sample"),
    )
)


#: The import's match by external id and device, locking the users found in number order (below).
_PG_MATCH_USERS = (
    "SELECT m.x, m.num, m.device FROM (SELECT * FROM ("
    "SELECT t.x, u.num, false AS device FROM unnest(%b::text[]) AS t(x) CROSS JOIN LATERAL "
    "(SELECT num FROM users WHERE workspace_id = %s AND external_id = t.x OFFSET 0) AS u "
    "UNION ALL SELECT t.x, d.user_num, true FROM unnest(%b::text[]) AS t(x) CROSS JOIN LATERAL "
    "(SELECT user_num FROM user_devices WHERE workspace_id = %s AND device_id = t.x OFFSET 0) AS d"
    ") AS found ORDER BY num OFFSET 0) AS m CROSS JOIN LATERAL "
    "(SELECT external_id FROM users WHERE num = m.num OFFSET 0 FOR KEY SHARE) AS l "
    "WHERE CASE WHEN m.device THEN l.external_id IS NULL ELSE l.external_id = m.x END"
)


_ROWS = msgspec.json.Decoder(list[tuple[int, int, int, int]])


class SqlCohortRepository:
    """Cohorts and their membership in SQL."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._pg = conn.dialect.name == "postgresql"

    # -- cohorts -----------------------------------------------------------------------------

    def get(
        self, workspace_id: str, partner: str, cohort_id: str, *, for_update: bool = False
    ) -> Cohort | None:
        """The cohort, locked for this transaction when `for_update`."""
        params = {"b_ws": workspace_id, "b_partner": partner, "b_cohort_id": cohort_id}
        if for_update and self._pg:
            rows = list(self._conn.execute(_GET.with_for_update(), params))
        else:
            rows = list(self._conn.execute(_GET, params))
        return _cohort(rows[0]) if rows else None

    def get_many(self, cohort_pks: Iterable[int], *, for_update: bool = False) -> list[Cohort]:
        """The cohorts with those keys, in key order (the lock order)."""
        pks = sorted(set(cohort_pks))
        if not pks:
            return []
        return [
            _cohort(r)
            for r in self._select(
                select(cohorts).where(cohorts.c.pk.in_(pks)).order_by(cohorts.c.pk), for_update
            )
        ]

    def ensure(self, *, workspace_id: str, partner: str, cohort_id: str, now: float) -> tuple[Cohort, bool]:
        """The cohort locked for writing, created (named after its id) when missing; True if created."""
        params = {"b_ws": workspace_id, "b_partner": partner, "b_cohort_id": cohort_id, "b_now": now}
        result = self._conn.execute(_ENSURE["postgresql" if self._pg else "sqlite"], params)
        cohort = self.get(workspace_id, partner, cohort_id, for_update=True)
        assert cohort is not None
        return cohort, result.rowcount == 1

    def rename(self, cohort_pk: int, *, name: str, partner_created_at: float, now: float) -> None:
        """Set the cohort's name and the partner's creation time."""
        self._conn.execute(
            update(cohorts)
            .where(cohorts.c.pk == cohort_pk)
            .values(name=name, named=True, partner_created_at=partner_created_at, updated_at=now)
        )

    def in_workspace(self, workspace_id: str, partner: str | None) -> list[Cohort]:
        """A workspace's cohorts, by partner, name and id."""
        stmt = select(cohorts).where(cohorts.c.workspace_id == workspace_id)
        if partner is not None:
            stmt = stmt.where(cohorts.c.partner == partner)
        stmt = stmt.order_by(cohorts.c.partner, cohorts.c.name, cohorts.c.cohort_id)
        return [_cohort(r) for r in self._conn.execute(stmt)]

    def _select(self, stmt: Select[Any], for_update: bool) -> list[Any]:
        if not (for_update and self._pg):
            return list(self._conn.execute(stmt))
        return list(self._conn.execute(stmt.with_for_update()))

    # -- matching ----------------------------------------------------------------------------

    # Resolution runs as driver SQL: no per-parameter statement compilation (PostgreSQL takes
    # the identifiers as array parameters).
    # On PostgreSQL the users matched by external id or device are share-locked (`FOR KEY SHARE`)
    # until commit: a concurrent delete or merge of a matched user waits for this import, and an
    # import that meets an uncommitted delete waits for it and then no longer matches the deleted
    # user. They are locked in user number order, the order in which every writer of users takes
    # its locks (store/identity.py): locked in identifier order (each probe locking what it found),
    # an import and a track request upgrading its users' locks deadlocked. So the identifiers are
    # matched first, without locks, then the matched users locked in number order and rechecked.
    # PostgreSQL probes an index once per identifier (`LATERAL … OFFSET 0`), whatever the
    # statistics say: `= ANY(…)` planned without statistics (a table loaded in bulk and not yet
    # analyzed) read every user of the workspace, once per request; the lock probes name the
    # primary key alone for the same reason.
    def match_users(
        self, workspace_id: str, user_ids: Iterable[str], device_ids: Iterable[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """external_id → user num and device_id → user num (users without an external_id only)."""
        if self._pg:
            params = (sorted(user_ids), workspace_id, sorted(device_ids), workspace_id)
            by_id: dict[str, int] = {}
            by_device: dict[str, int] = {}
            for x, num, device in self._resolve(_PG_MATCH_USERS, params):
                (by_device if device else by_id)[x] = num
            return by_id, by_device
        return self._sqlite_external_ids(workspace_id, list(user_ids)), self._sqlite_devices(
            workspace_id, list(device_ids)
        )

    def _sqlite_external_ids(self, workspace_id: str, ids: list[str]) -> dict[str, int]:
        if not ids:
            return {}
        where, params = self._in("external_id", ids)
        sql = f"SELECT external_id, num FROM users WHERE workspace_id = ? AND {where}"
        return dict(self._resolve(sql, (workspace_id, *params)))

    def _sqlite_devices(self, workspace_id: str, ids: list[str]) -> dict[str, int]:
        if not ids:
            return {}
        where, params = self._in("d.device_id", ids)
        sql = (
            "SELECT d.device_id, d.user_num FROM user_devices d JOIN users u ON u.num = d.user_num "
            f"WHERE d.workspace_id = ? AND {where} AND u.external_id IS NULL"
        )
        return dict(self._resolve(sql, (workspace_id, *params)))

    def resolve_aliases(self, workspace_id: str, aliases: Iterable[Alias]) -> dict[Alias, int]:
        """(alias_label, alias_name) → user num, for the aliases that exist."""
        pairs = sorted(aliases)
        if self._pg:
            sql = (
                "SELECT p.label, p.name, a.user_num FROM unnest(%b::text[], %b::text[]) AS p(label, name) "
                "CROSS JOIN LATERAL (SELECT user_num FROM user_aliases WHERE workspace_id = %s AND "
                "alias_label = p.label AND alias_name = p.name OFFSET 0 FOR KEY SHARE) AS a"
            )
            params: tuple[Any, ...] = ([p[0] for p in pairs], [p[1] for p in pairs], workspace_id)
        else:
            sql = (
                "SELECT alias_label, alias_name, user_num FROM user_aliases WHERE workspace_id = ? AND "
                f"(alias_label, alias_name) IN (VALUES {', '.join(['(?, ?)'] * len(pairs))})"
            )
            params = (workspace_id, *(v for pair in pairs for v in pair))
        rows = self._resolve(sql, params)
        return {(label, name): num for label, name, num in rows}

    def _resolve(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return list(self._conn.exec_driver_sql(sql, params).all())

    def _in(self, column: str, values: list[str]) -> tuple[str, tuple[Any, ...]]:
        return f"{column} IN ({', '.join('?' * len(values))})", tuple(values)

    def members(self, user_nums: Sequence[int]) -> list[dict[str, Any]]:
        """`braze_id`, `external_id` and `user_aliases` of each existing user, in number order."""
        if not user_nums:
            return []
        nums = list(user_nums)
        aliases: dict[int, list[dict[str, str]]] = {}
        alias_rows = self._conn.execute(
            select(user_aliases.c.user_num, user_aliases.c.alias_label, user_aliases.c.alias_name)
            .where(user_aliases.c.user_num.in_(nums))
            .order_by(user_aliases.c.alias_label, user_aliases.c.alias_name)
        )
        for num, label, name in alias_rows:
            aliases.setdefault(num, []).append({"alias_label": label, "alias_name": name})
        rows = self._conn.execute(
            select(users.c.num, users.c.braze_id, users.c.external_id)
            .where(users.c.num.in_(nums))
            .order_by(users.c.num)
        )
        return [
            {"braze_id": braze_id, "external_id": external_id, "user_aliases": aliases.get(num, [])}
            for num, braze_id, external_id in rows
        ]

    # -- membership log and snapshots --------------------------------------------------------

    def load_chunks(self, cohort_pk: int) -> list[tuple[int, bytes]]:
        """The snapshot's chunks: (chunk number, serialized roaring bitmap)."""
        stmt = select(cohort_chunks.c.chunk_no, cohort_chunks.c.bitmap).where(
            cohort_chunks.c.cohort_pk == cohort_pk
        )
        return [(no, bytes(image)) for no, image in self._conn.execute(stmt)]

    def changes_after(self, cohort_pk: int, *, after_version: int, upto_version: int) -> list[LoggedChange]:
        """Logged changes with after_version < version <= upto_version, in write order."""
        if not self._pg:  # one row: SQLite's driver lets go of the interpreter lock at every row it steps
            text = self._conn.exec_driver_sql(
                "SELECT json_group_array(json_array(version, id, user_num, entered)) FROM cohort_changes "
                "WHERE cohort_pk = ? AND version > ? AND version <= ?",
                (cohort_pk, after_version, upto_version),
            ).scalar_one()
            rows = sorted(_ROWS.decode(text))  # by (version, id): write order
            return [(v, n, bool(e)) for v, _id, n, e in rows]
        t = cohort_changes
        stmt = (
            select(t.c.version, t.c.user_num, t.c.entered)
            .where(t.c.cohort_pk == cohort_pk, t.c.version > after_version, t.c.version <= upto_version)
            .order_by(t.c.version, t.c.id)
        )
        return [(v, n, bool(e)) for v, n, e in self._conn.execute(stmt)]

    def append_changes(
        self,
        cohort_pk: int,
        *,
        version: int,
        entered: Sequence[int],
        left: Sequence[int],
        at: float,
        request_id: str | None,
        reason: str,
    ) -> None:
        """Append one log row per user who entered or left."""
        columns = (
            "INSERT INTO cohort_changes (cohort_pk, version, user_num, entered, at, request_id, reason) "
        )
        if self._pg:  # the users travel as two array parameters: one short statement to parse
            nums, flags = [*entered, *left], [True] * len(entered) + [False] * len(left)
            sql = (
                columns
                + "SELECT %s, %s, u, e, %s, %s, %s FROM unnest(%b::bigint[], %b::boolean[]) AS t(u, e)"
            )
            self._conn.exec_driver_sql(sql, (cohort_pk, version, at, request_id, reason, nums, flags))
            return
        # SQLite: one multi-row INSERT per 1,000 rows binds several times faster than executemany.
        rows = [(cohort_pk, version, num, True, at, request_id, reason) for num in entered]
        rows += [(cohort_pk, version, num, False, at, request_id, reason) for num in left]
        for start in range(0, len(rows), 1_000):
            batch = rows[start : start + 1_000]
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(batch))
            self._conn.exec_driver_sql(f"{columns}VALUES {values}", tuple(v for r in batch for v in r))

    def set_membership(self, cohort_pk: int, *, version: int, size: int, now: float) -> None:
        """Record the cohort's new version and size."""
        self._conn.execute(
            _SET_MEMBERSHIP, {"b_pk": cohort_pk, "b_version": version, "b_size": size, "b_now": now}
        )

    def record_import(
        self,
        cohort_pk: int,
        *,
        request_id: str,
        now: float,
        identifiers: int,
        matched: int,
        unmatched: int,
        entered: int,
        left: int,
        unmatched_sample: list[str],
    ) -> None:
        """Store the request's record and add it to the cohort's diagnostics."""
        self._conn.execute(
            _RECORD_REQUEST,
            {"id": request_id, "cohort_pk": cohort_pk, "received_at": now, "identifiers": identifiers,
             "matched": matched, "unmatched": unmatched, "entered": entered, "left": left},
        )  # fmt: skip
        self._conn.execute(
            _RECORD_DIAGNOSTICS,
            {"b_pk": cohort_pk, "b_now": now, "b_matched": matched, "b_unmatched": unmatched,
             "b_sample": json.dumps(unmatched_sample)},
        )  # fmt: skip

    def write_chunks(self, cohort_pk: int, chunks: dict[int, bytes | None], *, snapshot_version: int) -> None:
        """Replace the given snapshot chunks (None deletes one) and move the snapshot version."""
        if chunks:
            self._conn.execute(
                delete(cohort_chunks).where(
                    cohort_chunks.c.cohort_pk == cohort_pk, cohort_chunks.c.chunk_no.in_(list(chunks))
                )
            )
        images = [
            {"cohort_pk": cohort_pk, "chunk_no": no, "bitmap": b} for no, b in chunks.items() if b is not None
        ]
        if images:
            self._conn.execute(insert(cohort_chunks), images)
        self._conn.execute(
            update(cohorts).where(cohorts.c.pk == cohort_pk).values(snapshot_version=snapshot_version)
        )

    def import_flow(self, cohort_pk: int, since: float) -> list[tuple[float, int, int]]:
        """(received at, entered, left) of each import request received after `since`."""
        t = cohort_import_requests
        stmt = (
            select(t.c.received_at, t.c.entered, t.c.left)
            .where(t.c.cohort_pk == cohort_pk, t.c.received_at > since)
            .order_by(t.c.received_at)
        )
        return [(r.received_at, r.entered, r.left) for r in self._conn.execute(stmt)]

    def changes_since(self, cohort_pk: int, since: float) -> list[tuple[int, bool]]:
        """(user num, entered?) of every change logged after `since`, in write order."""
        t = cohort_changes
        stmt = (
            select(t.c.user_num, t.c.entered)
            .where(t.c.cohort_pk == cohort_pk, t.c.at > since)
            .order_by(t.c.id)
        )
        return [(n, bool(e)) for n, e in self._conn.execute(stmt)]


def _cohort(row: Any) -> Cohort:
    return Cohort(
        pk=row.pk,
        workspace_id=row.workspace_id,
        partner=row.partner,
        cohort_id=row.cohort_id,
        name=row.name,
        named=bool(row.named),
        partner_created_at=row.partner_created_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
        size=row.size,
        snapshot_version=row.snapshot_version,
        last_import_at=row.last_import_at,
        import_requests=row.import_requests,
        identifiers_matched=row.identifiers_matched,
        identifiers_unmatched=row.identifiers_unmatched,
        unmatched_sample=json.loads(row.unmatched_sample),
    )
