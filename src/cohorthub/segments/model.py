"""A segment definition: a versioned JSON filter tree parsed into an AST (pure values).

Combinators are `{"and": [...]}`, `{"or": [...]}` and `{"not": {...}}`, nested up to
`MAX_DEPTH` levels; every other node is a leaf with a `"type"`. Parsing validates every
field and raises `InvalidSegment` with the path to the offending node, e.g.
`filter.and[2].not.value`. docs/segments.md lists every leaf and operator.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cohorthub.clock import format_iso, parse_iso
from cohorthub.segments.errors import InvalidSegment
from cohorthub.segments.regex import regex_problem
from cohorthub.text import storable_problem

FILTER_VERSION = 1
MAX_DEPTH = 16
MAX_LEAVES = 200
MAX_INTEGER = 2**63 - 1  # counts and sizes: a signed 64-bit integer
MAX_DAYS = 3_650_000  # relative windows: ten thousand years
DAY = 86400.0

Scalar = str | int | float | bool | None

#: Standard attributes (columns of `users`) and their data types.
_STANDARD_STRINGS = ("email", "phone", "first_name", "last_name", "gender", "dob", "country", "home_city")
STANDARD_ATTRIBUTES: dict[str, str] = {
    **dict.fromkeys((*_STANDARD_STRINGS, "language", "time_zone"), "string"),
    "created_at": "time",
}

_PRESENCE = ("exists", "blank")
OPERATORS: dict[str, tuple[str, ...]] = {
    "string": ("equals", "not_equals", "matches_regex", "starts_with", *_PRESENCE),
    "number": ("eq", "ne", "lt", "le", "gt", "ge", *_PRESENCE),
    "boolean": ("equals", *_PRESENCE),
    "time": ("before", "after", "more_than_days_ago", "less_than_days_ago", *_PRESENCE),
    "array": ("includes_value", "size_eq", "size_lt", "size_gt", *_PRESENCE),
}
COUNT_OPS = ("at_least", "at_most", "exactly")
DATE_OPS = ("first_before", "first_after", "last_before", "last_after")
MEMBERSHIP_OPS = ("includes", "excludes")
IDENTITY_FIELDS = ("external_id", "email", "email_subscribe")
#: "Last used the app": the time of the user's latest SDK session, compared like a time attribute.
LAST_USED_APP = "last_used_app"
SUBSCRIPTION_STATES = ("opted_in", "subscribed", "unsubscribed")


@dataclass(frozen=True, slots=True)
class And:
    """Users matching every child."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Users matching any child."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """Users of the workspace not matching the child."""

    child: Node


@dataclass(frozen=True, slots=True)
class CohortLeaf:
    """Membership of a partner cohort ("Heap Cohorts includes …")."""

    partner: str
    cohort_id: str
    op: str  # includes | excludes


@dataclass(frozen=True, slots=True)
class AttributeLeaf:
    """A standard (`custom=False`) or custom attribute compared by its data type; the standard
    name `last_used_app` is the time of the user's latest session."""

    name: str
    custom: bool
    data_type: str
    op: str
    value: Scalar = None


@dataclass(frozen=True, slots=True)
class EventLeaf:
    """A custom event (`kind="event"`), purchase (`kind="purchase"`, name = product or None) or
    SDK session start (`kind="session"`, no name, count operators only)."""

    kind: str
    name: str | None
    op: str
    count: int | None = None
    within_days: float | None = None
    time: float | None = None


@dataclass(frozen=True, slots=True)
class IdentityLeaf:
    """Has an external_id / email; email subscription state equals a value."""

    field: str
    op: str  # exists | blank | equals
    value: str | None = None


@dataclass(frozen=True, slots=True)
class SegmentLeaf:
    """Membership of another segment of the workspace."""

    segment_id: str
    op: str  # includes | excludes


Leaf = CohortLeaf | AttributeLeaf | EventLeaf | IdentityLeaf | SegmentLeaf
Node = And | Or | Not | Leaf


def relative_cutoff(now: float, days: float) -> float:
    """The instant `days` days before `now`; windows slide by whole minutes."""
    return (now // 60) * 60 - days * DAY


def parse_time(text: str) -> float:
    """An ISO-8601 date or date-time (UTC when no offset is given) as Unix seconds."""
    return parse_iso(text)


def format_time(seconds: float) -> str:
    """Unix seconds as ISO-8601 UTC."""
    return format_iso(seconds, timespec="auto")


def iter_leaves(node: Node) -> Iterator[Leaf]:
    """Every leaf of the tree, left to right."""
    if isinstance(node, And | Or):
        for child in node.children:
            yield from iter_leaves(child)
    elif isinstance(node, Not):
        yield from iter_leaves(node.child)
    else:
        yield node


def standard_facts(leaf: Leaf) -> frozenset[str]:
    """The standard `users` columns (besides `external_id`) a leaf reads."""
    if isinstance(leaf, AttributeLeaf) and not leaf.custom and leaf.name != LAST_USED_APP:
        return frozenset((leaf.name,))
    if isinstance(leaf, IdentityLeaf) and leaf.field in ("email", "email_subscribe"):
        return frozenset((leaf.field,))
    return frozenset()


def uses_custom(leaf: Leaf) -> bool:
    """Whether a leaf reads the user's custom attributes."""
    return isinstance(leaf, AttributeLeaf) and leaf.custom


def uses_sessions(leaf: Leaf) -> bool:
    """Whether a leaf reads the user's SDK sessions."""
    if isinstance(leaf, EventLeaf):
        return leaf.kind == "session"
    return isinstance(leaf, AttributeLeaf) and not leaf.custom and leaf.name == LAST_USED_APP


def referenced_segments(node: Node) -> set[str]:
    """Ids of the segments whose membership the tree uses."""
    return {leaf.segment_id for leaf in iter_leaves(node) if isinstance(leaf, SegmentLeaf)}


def referenced_cohorts(node: Node) -> set[tuple[str, str]]:
    """(partner, cohort_id) of every cohort leaf."""
    return {(leaf.partner, leaf.cohort_id) for leaf in iter_leaves(node) if isinstance(leaf, CohortLeaf)}


def parse_filter(raw: Any, *, path: str = "filter") -> Node:
    """Validate a JSON filter tree and build its AST; `InvalidSegment` names the bad node."""
    node = _parse(raw, path, 1)
    if sum(1 for _ in iter_leaves(node)) > MAX_LEAVES:
        raise InvalidSegment(path, f"a filter may hold at most {MAX_LEAVES} leaves")
    return node


def _parse(raw: Any, path: str, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise InvalidSegment(path, f"filters may be nested at most {MAX_DEPTH} levels deep")
    if not isinstance(raw, dict):
        raise InvalidSegment(path, "must be an object")
    combinators = [key for key in ("and", "or", "not") if key in raw]
    if combinators:
        key = combinators[0]
        if len(raw) != 1:
            other = sorted(k for k in raw if k != key)[0]
            raise InvalidSegment(f"{path}.{other}", f"a `{key}` node must have no other key")
        return _parse_combinator(key, raw[key], f"{path}.{key}", depth)
    kind = raw.get("type")
    parser = _LEAF_PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise InvalidSegment(
            f"{path}.type", f"must be and/or/not or one of: {', '.join(sorted(_LEAF_PARSERS))}"
        )
    return parser(_Fields(raw, path))


def _parse_combinator(key: str, raw: Any, path: str, depth: int) -> Node:
    if key == "not":
        return Not(_parse(raw, path, depth + 1))
    if not isinstance(raw, list) or not raw:
        raise InvalidSegment(path, "must be a non-empty array of filters")
    children = tuple(_parse(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(raw))
    return And(children) if key == "and" else Or(children)


class _Fields:
    """Typed access to a leaf's fields that rejects unknown keys with their path."""

    def __init__(self, raw: dict[str, Any], path: str) -> None:
        self.raw = raw
        self.path = path
        self.used = {"type"}

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def get(self, key: str) -> Any:
        self.used.add(key)
        return self.raw.get(key)

    def text(self, key: str, *, optional: bool = False) -> str | None:
        value = self.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            raise InvalidSegment(self.at(key), "must be a non-empty string")
        return _storable(self.at(key), value)

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.get(key)
        if value not in allowed:
            raise InvalidSegment(self.at(key), f"must be one of: {', '.join(allowed)}")
        assert isinstance(value, str)
        return value

    def number(self, key: str, *, optional: bool = False, integer: bool = False) -> float | None:
        """A count or size (`integer`) up to `MAX_INTEGER`, else a number of days up to `MAX_DAYS`."""
        value = self.get(key)
        if value is None and optional:
            return None
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or not 0 <= value <= (MAX_INTEGER if integer else MAX_DAYS):
            if integer:
                raise InvalidSegment(self.at(key), f"must be an integer from 0 to {MAX_INTEGER}")
            raise InvalidSegment(self.at(key), f"must be a number of days from 0 to {MAX_DAYS}")
        return value if integer else float(value)

    def time(self, key: str) -> float:
        value = self.get(key)
        try:
            return parse_time(value) if isinstance(value, str) else _raise()
        except ValueError:
            raise InvalidSegment(self.at(key), "must be an ISO-8601 date or date-time string") from None

    def done(self) -> None:
        if extra := sorted(set(self.raw) - self.used):
            raise InvalidSegment(self.at(extra[0]), "unknown field")


def _storable(path: str, value: str) -> str:
    if problem := storable_problem(value):
        raise InvalidSegment(path, problem)
    return value


def _raise() -> float:
    raise ValueError


def _membership(f: _Fields, key: str) -> tuple[str, str]:
    ident = f.text(key)
    op = f.choice("op", MEMBERSHIP_OPS)
    assert ident is not None
    return ident, op


def _cohort(f: _Fields) -> Node:
    partner = f.text("partner")
    cohort_id, op = _membership(f, "cohort_id")
    f.get("cohort_name")  # shown by the API; ignored on input
    f.done()
    assert partner is not None
    return CohortLeaf(partner=partner.lower(), cohort_id=cohort_id, op=op)


def _segment(f: _Fields) -> Node:
    segment_id, op = _membership(f, "segment_id")
    f.done()
    return SegmentLeaf(segment_id=segment_id, op=op)


def _attribute(f: _Fields) -> Node:
    name = f.text("attribute")
    assert name is not None
    if name not in STANDARD_ATTRIBUTES:
        raise InvalidSegment(
            f.at("attribute"), f"must be a standard attribute: {', '.join(sorted(STANDARD_ATTRIBUTES))}"
        )
    return _attribute_leaf(f, name, custom=False, data_type=STANDARD_ATTRIBUTES[name])


def _custom_attribute(f: _Fields) -> Node:
    name = f.text("attribute")
    data_type = f.choice("data_type", tuple(OPERATORS))
    assert name is not None
    return _attribute_leaf(f, name, custom=True, data_type=data_type)


def _attribute_leaf(f: _Fields, name: str, *, custom: bool, data_type: str) -> Node:
    op = f.choice("op", OPERATORS[data_type])
    value = None if op in _PRESENCE else _operand(f, data_type, op)
    f.done()
    return AttributeLeaf(name=name, custom=custom, data_type=data_type, op=op, value=value)


def _operand(f: _Fields, data_type: str, op: str) -> Scalar:
    value = f.get("value")
    if data_type == "string":
        if not isinstance(value, str):
            raise InvalidSegment(f.at("value"), "must be a string")
        _storable(f.at("value"), value)
        if op == "matches_regex":
            _check_regex(f, value)
        return value
    if data_type == "boolean":
        if not isinstance(value, bool):
            raise InvalidSegment(f.at("value"), "must be true or false")
        return value
    if data_type == "time" and op in ("before", "after"):
        return f.time("value")
    if data_type == "array" and op == "includes_value":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidSegment(f.at("value"), "must be a string or a number")
        return _storable(f.at("value"), value) if isinstance(value, str) else _in_range(f, value)
    integer = data_type == "array"
    return f.number("value", integer=integer) if data_type != "number" else _any_number(f)


def _any_number(f: _Fields) -> float:
    value = f.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSegment(f.at("value"), "must be a number")
    return float(_in_range(f, value))


def _in_range(f: _Fields, value: float) -> float:
    """A finite number; an integer must fit 64 bits (JSON output and SQL parameters hold no more)."""
    if isinstance(value, int) and -MAX_INTEGER - 1 <= value <= MAX_INTEGER:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise InvalidSegment(
        f.at("value"), f"must be a finite number (an integer from {-MAX_INTEGER - 1} to {MAX_INTEGER})"
    )


def _check_regex(f: _Fields, pattern: str) -> None:
    if problem := regex_problem(pattern):
        raise InvalidSegment(f.at("value"), problem)


def _event(f: _Fields) -> Node:
    return _event_leaf(f, "event", f.text("event"))


def _purchase(f: _Fields) -> Node:
    return _event_leaf(f, "purchase", f.text("product_id", optional=True))


def _event_leaf(f: _Fields, kind: str, name: str | None) -> Node:
    op = f.choice("op", COUNT_OPS + DATE_OPS)
    if op in COUNT_OPS:
        count = f.number("count", integer=True)
        within = f.number("within_days", optional=True)
        if within == 0:
            raise InvalidSegment(f.at("within_days"), "must be greater than 0")
        f.done()
        return EventLeaf(kind=kind, name=name, op=op, count=int(count or 0), within_days=within)
    moment = f.time("time")
    f.done()
    return EventLeaf(kind=kind, name=name, op=op, time=moment)


def _sessions(f: _Fields) -> Node:
    op = f.choice("op", COUNT_OPS)
    count = f.number("count", integer=True)
    within = f.number("within_days", optional=True)
    if within == 0:
        raise InvalidSegment(f.at("within_days"), "must be greater than 0")
    f.done()
    return EventLeaf(kind="session", name=None, op=op, count=int(count or 0), within_days=within)


def _last_used_app(f: _Fields) -> Node:
    return _attribute_leaf(f, LAST_USED_APP, custom=False, data_type="time")


def _identity(f: _Fields) -> Node:
    field = f.choice("field", IDENTITY_FIELDS)
    if field == "email_subscribe":
        f.choice("op", ("equals",))
        value = f.choice("value", SUBSCRIPTION_STATES)
        f.done()
        return IdentityLeaf(field=field, op="equals", value=value)
    op = f.choice("op", _PRESENCE)
    f.done()
    return IdentityLeaf(field=field, op=op)


_LEAF_PARSERS = {
    "cohort": _cohort,
    "attribute": _attribute,
    "custom_attribute": _custom_attribute,
    "event": _event,
    "purchase": _purchase,
    "identity": _identity,
    "segment": _segment,
    "sessions": _sessions,
    "last_used_app": _last_used_app,
}


def dump_filter(node: Node) -> dict[str, Any]:
    """The JSON form of a tree (`parse_filter(dump_filter(n)) == n`)."""
    if isinstance(node, And | Or):
        return {"and" if isinstance(node, And) else "or": [dump_filter(c) for c in node.children]}
    if isinstance(node, Not):
        return {"not": dump_filter(node.child)}
    if isinstance(node, CohortLeaf):
        return {"type": "cohort", "partner": node.partner, "cohort_id": node.cohort_id, "op": node.op}
    if isinstance(node, SegmentLeaf):
        return {"type": "segment", "segment_id": node.segment_id, "op": node.op}
    if isinstance(node, IdentityLeaf):
        out: dict[str, Any] = {"type": "identity", "field": node.field, "op": node.op}
        return out | ({"value": node.value} if node.value is not None else {})
    if isinstance(node, AttributeLeaf):
        return _dump_attribute(node)
    return _dump_event(node)


def _dump_attribute(leaf: AttributeLeaf) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "custom_attribute" if leaf.custom else "attribute", "attribute": leaf.name}
    if not leaf.custom and leaf.name == LAST_USED_APP:
        out = {"type": LAST_USED_APP}
    if leaf.custom:
        out["data_type"] = leaf.data_type
    out["op"] = leaf.op
    if leaf.op in ("before", "after") and isinstance(leaf.value, float):
        out["value"] = format_time(leaf.value)
    elif leaf.value is not None:
        out["value"] = leaf.value
    return out


def _dump_event(leaf: EventLeaf) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "sessions" if leaf.kind == "session" else leaf.kind}
    if leaf.kind == "event":
        out["event"] = leaf.name
    elif leaf.name is not None:
        out["product_id"] = leaf.name
    out["op"] = leaf.op
    if leaf.time is not None:
        out["time"] = format_time(leaf.time)
    else:
        out["count"] = leaf.count
        if leaf.within_days is not None:
            out["within_days"] = leaf.within_days
    return out
