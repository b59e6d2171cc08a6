"""The segment catch-up probe: what changed since an evaluation, in one statement, and users' facts.

An evaluation keeps, per change source (user stamps, events, purchases, deletions), the highest id it has
seen and the gaps below it; `changes` answers everything past those marks, the versions of the cohorts
the segment uses, the stored definitions of the segments it reads and (when asked) the facts of the changed
users, as one row of JSON arrays. `user_facts` reads the facts of any other users.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from cohorthub.segments.model import STANDARD_ATTRIBUTES
from cohorthub.segments.ports import SOURCES, ChangeRow, Changes, FactsWanted
from cohorthub.segments.reference import UserFacts
from cohorthub.store.db import json_loads

_STANDARD = [*STANDARD_ATTRIBUTES, "email_subscribe"]
#: A facts row: the user number, whether the row is of the workspace, the external id, the custom
#: attributes (NULL when not wanted), then the standard columns wanted.
_FACT_HEAD = 4
_REAL_FACTS = ("created_at",)
_TIME = '"time"'
_FILTER = '"filter"'
#: Changed users whose facts the catch-up probe reads itself; catch-up reads any others in batches.
_COVERED = 2000
#: source -> (table, id column, user number column), for the catch-up probe.
_CHANGE_SOURCES = {
    "users": ("users", "change_id", "num"),
    "events": ("custom_events", "id", "user_num"),
    "purchases": ("purchases", "id", "user_num"),
    "deletions": ("segment_user_deletions", "id", "user_num"),
}
_MAX_ID = 2**63 - 1
_PG_XMIN = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
_PG_XMAX = "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"


def _json(value: Any) -> Any:
    """A JSON aggregate as Python (psycopg decodes `json` itself; SQLite answers text)."""
    return json_loads(value) if isinstance(value, str) else value


def _json_time(column: str, *, pg: bool) -> str:
    """A time column as the probe's JSON carries it: on SQLite, text with 17 significant digits
    (`%!.17g`: its JSON keeps 15 digits and its plain `%.17g` 16, which would cut them)."""
    return column if pg else f"printf('%!.17g', {column})"


def _fact_columns(wanted: FactsWanted | None, *, pg: bool, in_json: bool) -> tuple[list[str], str]:
    """The standard columns a facts row of `wanted` carries, and the row's select list (with one
    parameter: the workspace); `in_json`: for the probe's JSON (`_json_time`)."""
    names = None if wanted is None else wanted.standard
    standard = [c for c in _STANDARD if names is None or c in names]
    custom = "custom_attributes" if wanted is None or wanted.custom else "NULL"
    mark = "%s" if pg else "?"
    times = [_json_time(c, pg=pg) if in_json and c in _REAL_FACTS else c for c in standard]
    return standard, ", ".join(["num", f"workspace_id = {mark}", "external_id", custom, *times])


def _probe_sql(
    changes: str,
    wanted: FactsWanted | None,
    fact_columns: str,
    workspace_id: str,
    segment_ids: list[str],
    *,
    pg: bool,
) -> tuple[str, list[Any]]:
    """The probe over the change rows `changes` (src, id, num, mine): one row of JSON arrays.

    Its columns: the change rows; (id, filter, updated_at) of the segments `segment_ids`; then, when
    `wanted`, the `users` rows (`fact_columns`, from `_fact_columns`), events, purchases and sessions of
    the first `_COVERED` changed users of the workspace. Times are `_json_time`s.
    """

    def agg(columns: str) -> str:
        if pg:
            return f"COALESCE(json_agg(json_build_array({columns})), '[]'::json)"
        return f"json_group_array(json_array({columns}))"

    def real(column: str) -> str:
        return _json_time(column, pg=pg)

    dirty = "= ANY(ARRAY(SELECT num FROM dirty))" if pg else "IN (SELECT num FROM dirty)"
    selects = [f"(SELECT {agg('src, id, num, mine')} FROM ch)"]
    extra: list[Any] = []
    if segment_ids:
        in_ids = "= ANY(%s)" if pg else f"IN ({', '.join('?' * len(segment_ids))})"
        at = "CAST(updated_at AS TEXT)" if pg else real("updated_at")
        mark = "%s" if pg else "?"
        columns = f"id, {_FILTER}, {at}"
        selects.append(f"(SELECT {agg(columns)} FROM segments WHERE workspace_id = {mark} AND id {in_ids})")
        extra += [workspace_id, segment_ids] if pg else [workspace_id, *segment_ids]
    else:
        selects.append("NULL")
    if wanted is not None:
        selects.append(f"(SELECT {agg(fact_columns)} FROM users WHERE num {dirty})")
        extra.append(workspace_id)
        if wanted.events:
            names = sorted(wanted.events)
            in_names = "= ANY(%s)" if pg else f"IN ({', '.join('?' * len(names))})"
            selects.append(
                f"(SELECT {agg('user_num, name, ' + real(_TIME))} FROM custom_events "
                f"WHERE user_num {dirty} AND name {in_names})"
            )
            extra += [names] if pg else names
        else:
            selects.append("NULL")
        if wanted.purchases:
            selects.append(
                f"(SELECT {agg('user_num, product_id, ' + real(_TIME))} FROM purchases "
                f"WHERE user_num {dirty})"
            )
        else:
            selects.append("NULL")
        if wanted.sessions:
            selects.append(
                f"(SELECT {agg('user_num, ' + real('started_at'))} FROM sdk_sessions WHERE user_num {dirty})"
            )
        else:
            selects.append("NULL")
    written = "src BETWEEN 0 AND 2 AND mine = 1"
    sql = (
        f"WITH ch(src, id, num, mine) AS ({changes}), "
        f"dirty AS (SELECT DISTINCT num FROM ch WHERE {written} ORDER BY num LIMIT {_COVERED}) "
        f"SELECT {', '.join(selects)}"
    )
    return sql, extra


def _facts(
    standard: Sequence[str], users_: Any, events: Any, purchases_: Any, sessions: Any
) -> list[UserFacts]:
    """User facts from facts rows (`_fact_columns`, with the standard columns `standard`), and (num, name,
    time) events, (num, product, time) purchases, (num, time) sessions."""
    by_event: dict[int, dict[str, list[float]]] = {}
    for num, name, at in events or ():
        by_event.setdefault(num, {}).setdefault(name, []).append(float(at))
    by_purchase: dict[int, list[tuple[str, float]]] = {}
    for num, product, at in purchases_ or ():
        by_purchase.setdefault(num, []).append((product, float(at)))
    by_session: dict[int, list[float]] = {}
    for num, at in sessions or ():
        by_session.setdefault(num, []).append(float(at))
    out = []
    real = [(_FACT_HEAD + i, name) for i, name in enumerate(standard) if name in _REAL_FACTS]
    for values in users_ or ():
        num, mine, external_id, custom = values[:_FACT_HEAD]
        if not mine:  # a user number of another workspace
            continue
        known = dict(zip(standard, values[_FACT_HEAD:], strict=True)) if standard else {}
        for at, name in real:
            known[name] = float(values[at]) if values[at] is not None else None
        out.append(
            UserFacts(
                num=num,
                external_id=external_id,
                standard=known,
                custom=_custom(custom),
                events=by_event.get(num, {}),
                purchases=by_purchase.get(num, []),
                sessions=by_session.get(num, []),
            )
        )
    return out


def _custom(text: str | None) -> dict[str, Any]:
    value = json_loads(text) if text and text != "{}" else {}
    return value if isinstance(value, dict) else {}


def changes(
    conn: Connection,
    workspace_id: str,
    after: Mapping[str, tuple[int, Collection[int]]],
    cohorts: Collection[tuple[str, str]],
    wanted: FactsWanted | None = None,
    segments: Collection[str] = (),
) -> Changes:
    """Every source's rows past its mark (or among its gaps), the cohorts' versions, the stored
    definitions of `segments` and, when `wanted`, the facts of the first `_COVERED` changed users: one
    statement answering one row.

    One row, not one per change: SQLite's driver lets go of the interpreter lock at every row it
    steps, and under concurrent writers each step could wait for the lock again. Rows are read by id
    only (new rows of every workspace, those of others without a user number): with the workspace in
    the WHERE clause SQLite would walk the workspace's whole index. On PostgreSQL the same statement
    returns its snapshot's bounds, which tell when a gap can no longer be filled.
    """
    pg = conn.dialect.name == "postgresql"
    mark = "%s" if pg else "?"
    parts: list[str] = []
    args: list[Any] = []
    for no, source in enumerate(SOURCES):
        table, id_col, num_col = _CHANGE_SOURCES[source]
        high, gaps = after[source]
        # One range from the lowest gap: with the upper bound PostgreSQL estimates it as narrow even
        # without statistics (a table loaded in bulk and not analyzed yet) and scans the index, where
        # `> mark` alone, or `OR id = ANY(gaps)`, scans the table. The ids already seen are filtered.
        low = min(gaps, default=high + 1) - 1
        where = f"{id_col} > {mark} AND {id_col} <= {_MAX_ID}"
        args += [workspace_id, low]
        if gaps and pg:
            where += f" AND ({id_col} > {mark} OR {id_col} = ANY({mark}))"
            args += [high, sorted(gaps)]
        elif gaps:
            where += f" AND ({id_col} > ? OR {id_col} IN ({', '.join('?' * len(gaps))}))"
            args += [high, *sorted(gaps)]
        parts.append(
            f"SELECT {no}, {id_col}, {num_col}, CASE WHEN workspace_id = {mark} THEN 1 ELSE 0 END "
            f"FROM {table} WHERE {where}"
        )
    keys = list(cohorts)
    for no, (partner, cohort_id) in enumerate(keys, start=len(SOURCES)):
        parts.append(
            f"SELECT {no}, pk, version, 1 FROM cohorts "
            f"WHERE workspace_id = {mark} AND partner = {mark} AND cohort_id = {mark}"
        )
        args += [workspace_id, partner, cohort_id]
    if pg:
        parts.append(f"SELECT -1, {_PG_XMIN}, {_PG_XMAX}, 0")
    standard, fact_columns = _fact_columns(wanted, pg=pg, in_json=True)
    sql, extra = _probe_sql(
        " UNION ALL ".join(parts), wanted, fact_columns, workspace_id, sorted(segments), pg=pg
    )
    row = conn.exec_driver_sql(sql, tuple(args + extra)).one()
    stored = {id_: (text, float(at)) for id_, text, at in _json(row[1]) or ()}
    rows: dict[str, list[ChangeRow]] = {source: [] for source in SOURCES}
    found: dict[tuple[str, str], tuple[int, int]] = {}
    snapshot: tuple[int, int] | None = None
    for no, a, b, mine in _json(row[0]):
        if no < 0:
            snapshot = (int(a), int(b))
        elif no < len(SOURCES):
            rows[SOURCES[no]].append((int(a), int(b) if mine else None))
        else:
            found[keys[no - len(SOURCES)]] = (int(a), int(b))
    if wanted is None:
        return Changes(rows, found, snapshot, segments=stored)
    written = {num for source in SOURCES[:3] for _, num in rows[source] if num is not None}
    covered = sorted(written)[:_COVERED]
    facts = _facts(standard, *(_json(v) for v in row[2:]))
    return Changes(rows, found, snapshot, covered, facts, stored)


def user_facts(
    conn: Connection,
    workspace_id: str,
    nums: list[int],
    *,
    events: set[str],
    purchases: bool,
    sessions: bool = False,
) -> list[UserFacts]:
    """Everything but cohorts about the given users (those still in the workspace).

    Driver-level SQL (no statement building per call), by primary key / user number only: with the
    workspace in the WHERE clause SQLite scans the workspace's index.
    """
    pg = conn.dialect.name == "postgresql"
    args: list[Any] = [list(nums)] if pg else list(nums)
    in_nums = "= ANY(%s)" if pg else f"IN ({', '.join('?' * len(nums))})"

    def rows(sql: str, more: Sequence[Any] = (), first: Sequence[Any] = ()) -> list[Any]:
        return list(conn.exec_driver_sql(sql, (*first, *args, *more)))

    standard, columns = _fact_columns(None, pg=pg, in_json=False)
    found = rows(f"SELECT {columns} FROM users WHERE num {in_nums}", first=[workspace_id])
    if not found:
        return []
    by_name: list[Any] = []
    if events:
        names: list[Any] = sorted(events)
        in_names = "= ANY(%s)" if pg else f"IN ({', '.join('?' * len(names))})"
        sql = (
            f"SELECT user_num, name, {_TIME} FROM custom_events WHERE user_num {in_nums} AND name {in_names}"
        )
        by_name = rows(sql, [names] if pg else names)
    bought = (
        rows(f"SELECT user_num, product_id, {_TIME} FROM purchases WHERE user_num {in_nums}")
        if purchases
        else []
    )
    started = (
        rows(f"SELECT user_num, started_at FROM sdk_sessions WHERE user_num {in_nums}") if sessions else []
    )
    return _facts(standard, found, by_name, bought, started)
