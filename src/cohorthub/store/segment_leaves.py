"""Leaf members straight from SQL: the predicate pushed into the query, only `num` fetched.

Each leaf becomes one query over `users`, `custom_events`, `purchases` or `sdk_sessions` that returns the user
numbers matching its positive form; negative operators (`not_equals`, `ne`, `blank`, `at_most`,
`exactly 0`) are the complement of a positive one, taken by the index against the universe.
Custom attributes are read with the database's JSON functions (`json_type`/`json_extract` on
SQLite, `jsonb` on PostgreSQL) and typed as the reference evaluator types them. The operators
SQL cannot decide exactly as Python does (`matches_regex`, custom `time` values, which may be ISO
strings, `{"$time": …}` or numbers, and `includes_value`) fetch only the attribute's value of the
users that have it and apply `reference.attribute_matches`. Rows are read in batches through the
driver's cursor (server-side on PostgreSQL), never as ORM rows: 10M numbers cost ~2.5 s.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

from pyroaring import BitMap
from sqlalchemy import (
    BigInteger,
    Connection,
    Numeric,
    Select,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from cohorthub.segments.model import LAST_USED_APP, AttributeLeaf, EventLeaf, IdentityLeaf, Leaf
from cohorthub.segments.ports import LeafRows
from cohorthub.segments.reference import attribute_matches, typed_value
from cohorthub.segments.windows import leaf_cutoff
from cohorthub.store.apps import sdk_sessions
from cohorthub.store.tables import custom_events, purchases, users

_FETCH = 65_536
_cursor_names = itertools.count()
_NUMERIC_OPS = {"eq": "__eq__", "lt": "__lt__", "le": "__le__", "gt": "__gt__", "ge": "__ge__"}
_SIZE_OPS = {"size_eq": "__eq__", "size_lt": "__lt__", "size_gt": "__gt__"}


def stream(conn: Connection, query: Select[Any]) -> Iterator[list[Any]]:
    """The rows of `query` in batches, through the driver's own cursor (server-side on PostgreSQL).

    A server-side cursor lives in a transaction block: in a read-only unit (autocommit) the scan
    opens one of its own.
    """
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    args: Any = [params[k] for k in compiled.positiontup or ()] if compiled.positional else params
    raw: Any = conn.connection.dbapi_connection
    if conn.dialect.name != "postgresql":
        yield from _fetch(raw.cursor(), compiled.string, args)
        return
    cursor = raw.cursor(name=f"segment_scan_{next(_cursor_names)}")
    cursor.itersize = _FETCH
    with raw.transaction() if raw.autocommit else nullcontext():
        yield from _fetch(cursor, compiled.string, args)


def _fetch(cursor: Any, sql: str, args: Any) -> Iterator[list[Any]]:
    try:
        cursor.execute(sql, args)
        while rows := cursor.fetchmany(_FETCH):
            yield rows
    finally:
        cursor.close()


def nums_of(conn: Connection, query: Select[Any]) -> BitMap:
    """The first column of every row of `query` as a bitmap."""
    out = BitMap()
    for rows in stream(conn, query):
        out.update([row[0] for row in rows])
    return out


def universe(conn: Connection, workspace_id: str) -> BitMap:
    """Every user number of the workspace."""
    return nums_of(conn, select(users.c.num).where(users.c.workspace_id == workspace_id))


def leaf_rows(conn: Connection, workspace_id: str, leaf: Leaf, *, now: float) -> LeafRows:
    """The members of one leaf (other than cohort and segment membership) at `now`."""
    if isinstance(leaf, EventLeaf):
        return _event(conn, workspace_id, leaf, now)
    if isinstance(leaf, AttributeLeaf) and not leaf.custom and leaf.name == LAST_USED_APP:
        last = select(sdk_sessions.c.user_num, func.max(sdk_sessions.c.started_at))
        query = last.where(sdk_sessions.c.workspace_id == workspace_id).group_by(sdk_sessions.c.user_num)
        return _in_python(conn, query, leaf, now, json_values=False)
    if isinstance(leaf, IdentityLeaf):
        column = users.c.email_subscribe if leaf.field == "email_subscribe" else users.c[leaf.field]
        if leaf.op == "equals":
            return _users(conn, workspace_id, column == leaf.value)
        return _users(conn, workspace_id, column != "", complement=leaf.op == "blank")
    assert isinstance(leaf, AttributeLeaf)
    if leaf.custom:
        return _custom(conn, workspace_id, leaf, now)
    if leaf.data_type == "time":
        return _standard_time(conn, workspace_id, leaf, now)
    return _standard_string(conn, workspace_id, leaf)


def _users(conn: Connection, ws: str, where: ColumnElement[bool], *, complement: bool = False) -> LeafRows:
    query = select(users.c.num).where(users.c.workspace_id == ws, where)
    return LeafRows(nums_of(conn, query), complement=complement)


def _standard_string(conn: Connection, ws: str, leaf: AttributeLeaf) -> LeafRows:
    column = users.c[leaf.name]
    if leaf.op == "matches_regex":
        query = select(users.c.num, column).where(users.c.workspace_id == ws, column != "")
        return _in_python(conn, query, leaf, 0.0, json_values=False)
    positive, complement = _string_test(column, leaf)
    return _users(conn, ws, positive, complement=complement)


def _string_test(value: ColumnElement[Any], leaf: AttributeLeaf) -> tuple[ColumnElement[bool], bool]:
    """The positive SQL test of a string leaf over `value` (NULL when absent), and whether to negate."""
    operand = leaf.value if isinstance(leaf.value, str) else ""
    if leaf.op in ("exists", "blank"):
        return value != "", leaf.op == "blank"
    if leaf.op in ("equals", "not_equals"):
        test = value == operand if operand else false()  # "" is no value: it equals nothing
        return test, leaf.op == "not_equals"
    assert leaf.op == "starts_with"
    return and_(value != "", func.substr(value, 1, len(operand)) == operand), False


def _standard_time(conn: Connection, ws: str, leaf: AttributeLeaf, now: float) -> LeafRows:
    column = users.c[leaf.name]  # created_at: a number, never NULL
    cutoff = leaf_cutoff(leaf, now)
    if cutoff is not None:  # moments: every user at or after the cutoff
        query = select(users.c.num, column).where(users.c.workspace_id == ws, column >= cutoff)
        nums = BitMap()
        moments: list[tuple[float, int]] = []
        for rows in stream(conn, query):
            nums.update([r[0] for r in rows])
            moments.extend((float(r[1]), int(r[0])) for r in rows)
        return LeafRows(nums, complement=leaf.op == "more_than_days_ago", moments=moments)
    if leaf.op in ("exists", "blank"):
        return _users(conn, ws, column.is_not(None), complement=leaf.op == "blank")
    assert isinstance(leaf.value, float)
    return _users(conn, ws, column < leaf.value if leaf.op == "before" else column > leaf.value)


class _Json:
    """One key of `users.custom_attributes`, typed as the reference evaluator types it."""

    def __init__(self, dialect: str, key: str) -> None:
        col = users.c.custom_attributes
        self.postgres = dialect == "postgresql"
        if self.postgres:
            doc = cast(col, JSONB)
            self.value: ColumnElement[Any] = doc.op("->")(literal(key))
            self.kind: ColumnElement[Any] = func.jsonb_typeof(self.value)
            self.text: ColumnElement[Any] = doc.op("->>")(literal(key))
            self.number: ColumnElement[Any] = cast(self.text, Numeric)
            self.length: ColumnElement[Any] = func.jsonb_array_length(self.value)
            self.kinds: dict[str, tuple[str, ...]] = {
                "string": ("string",),
                "number": ("number",),
                "array": ("array",),
            }
        else:
            path = f'$."{key}"'
            self.value = col.op("->")(path)
            self.kind = func.json_type(col, path)
            self.text = self.number = func.json_extract(col, path)
            self.length = func.json_array_length(col, path)
            self.kinds = {"string": ("text",), "number": ("integer", "real"), "array": ("array",)}

    def of(self, kind: str) -> ColumnElement[bool]:
        """The value is of this JSON kind."""
        return or_(*(self.kind == k for k in self.kinds[kind]))

    def typed(self, kind: str, value: ColumnElement[Any]) -> ColumnElement[Any]:
        """`value` when the attribute is of `kind`, else NULL (so no test on it holds)."""
        return case((self.of(kind), value), else_=None)

    def boolean(self, wanted: bool | None) -> ColumnElement[bool]:
        """The value is a boolean (`wanted` None) or that boolean."""
        if self.postgres:
            literal_ = cast(literal(json.dumps(wanted)), JSONB)
            return self.kind == "boolean" if wanted is None else self.value == literal_
        return or_(*(self.kind == k for k in (["true", "false"] if wanted is None else [json.dumps(wanted)])))


def _custom(conn: Connection, ws: str, leaf: AttributeLeaf, now: float) -> LeafRows:
    if conn.dialect.name == "sqlite" and not _plain_key(leaf.name):  # no JSON path finds it: whole objects
        query = select(users.c.num, users.c.custom_attributes).where(
            users.c.workspace_id == ws, users.c.custom_attributes != "{}"
        )
        return _in_python(conn, query, leaf, now, json_values=True, whole=True)
    attr = _Json(conn.dialect.name, leaf.name)
    data_type, op = leaf.data_type, leaf.op
    positive: ColumnElement[bool]
    if data_type == "string" and op != "matches_regex":
        test, complement = _string_test(attr.typed("string", attr.text), leaf)
        return _users(conn, ws, test, complement=complement)
    if data_type == "number":
        number = attr.typed("number", attr.number)
        if op in ("exists", "blank"):
            return _users(conn, ws, attr.of("number"), complement=op == "blank")
        operand = cast(literal(repr(leaf.value)), Numeric) if attr.postgres else literal(leaf.value)
        positive = getattr(number, _NUMERIC_OPS["eq" if op == "ne" else op])(operand)
        return _users(conn, ws, positive, complement=op == "ne")
    if data_type == "boolean":
        wanted = leaf.value if op == "equals" else None
        return _users(
            conn, ws, attr.boolean(wanted if isinstance(wanted, bool) else None), complement=op == "blank"
        )
    if data_type == "array" and op != "includes_value":
        size = attr.typed("array", attr.length)
        positive = size > 0
        if op in _SIZE_OPS:
            positive = and_(positive, getattr(size, _SIZE_OPS[op])(leaf.value))
        return _users(conn, ws, positive, complement=op == "blank")
    kind_test = attr.kind.is_not(None) if data_type == "time" else attr.of(data_type)
    query = select(users.c.num, attr.value).where(users.c.workspace_id == ws, kind_test)
    return _in_python(conn, query, leaf, now, json_values=not attr.postgres)


def _plain_key(key: str) -> bool:
    """Whether `$."key"` finds the key (SQLite matches the stored, `json.dumps`-escaped text)."""
    return key.isascii() and key.isprintable() and '"' not in key and "\\" not in key


def _in_python(
    conn: Connection,
    query: Select[Any],
    leaf: AttributeLeaf,
    now: float,
    *,
    json_values: bool,
    whole: bool = False,
) -> LeafRows:
    """Apply the reference rule to (num, value) rows; users without a row have no value."""
    absent_matches = attribute_matches(leaf, None, now=now)
    cutoff = leaf_cutoff(leaf, now)
    nums = BitMap()
    moments: list[tuple[float, int]] = []
    for rows in stream(conn, query):
        for num, raw in rows:
            value = json.loads(raw) if json_values and isinstance(raw, str) else raw
            if whole:
                value = value.get(leaf.name) if isinstance(value, dict) else None
            if attribute_matches(leaf, value, now=now) != absent_matches:
                nums.add(num)
            if cutoff is not None and (moment := typed_value(value, "time")) is not None and moment >= cutoff:
                moments.append((float(moment), int(num)))
    return LeafRows(nums, complement=absent_matches, moments=moments)


def _event(conn: Connection, ws: str, leaf: EventLeaf, now: float) -> LeafRows:
    table = {"event": custom_events, "purchase": purchases, "session": sdk_sessions}[leaf.kind]
    at = sdk_sessions.c.started_at if leaf.kind == "session" else table.c.time
    where = [table.c.workspace_id == ws]
    if leaf.kind == "event":
        where.append(custom_events.c.name == leaf.name)
    elif leaf.name is not None:
        where.append(purchases.c.product_id == leaf.name)
    user, count = table.c.user_num, func.count(type_=BigInteger)  # compared with counts up to 2**63 - 1
    if leaf.time is not None:
        moment = func.min(at) if leaf.op.startswith("first") else func.max(at)
        having = moment < leaf.time if leaf.op.endswith("before") else moment > leaf.time
        return LeafRows(nums_of(conn, select(user).where(*where).group_by(user).having(having)))
    wanted = leaf.count or 0
    cutoff = leaf_cutoff(leaf, now)
    if cutoff is not None:  # one row per user with events in the window: its count and first moment
        where.append(at >= cutoff)
        query = select(user, count, func.min(at)).where(*where).group_by(user)
        absent_matches = _count_matches(leaf.op, 0, wanted)  # users without events in the window
        nums = BitMap()
        moments: list[tuple[float, int]] = []
        for rows in stream(conn, query):
            nums.update([r[0] for r in rows if _count_matches(leaf.op, int(r[1]), wanted) != absent_matches])
            moments.extend((float(r[2]), int(r[0])) for r in rows)
        return LeafRows(nums, complement=absent_matches, moments=moments)
    if leaf.op == "at_least":
        if wanted == 0:
            return LeafRows(BitMap(), complement=True)
        return LeafRows(nums_of(conn, select(user).where(*where).group_by(user).having(count >= wanted)))
    if leaf.op == "at_most":
        return LeafRows(
            nums_of(conn, select(user).where(*where).group_by(user).having(count > wanted)), complement=True
        )
    if wanted == 0:  # exactly 0: everyone without such an event
        return LeafRows(nums_of(conn, select(user).where(*where).group_by(user)), complement=True)
    return LeafRows(nums_of(conn, select(user).where(*where).group_by(user).having(count == wanted)))


def _count_matches(op: str, count: int, wanted: int) -> bool:
    if op == "at_least":
        return count >= wanted
    return count <= wanted if op == "at_most" else count == wanted
