"""The reference evaluator: one user at a time, simple and obviously right.

It is the specification the bitmap engine is tested against, and it answers "explain":
which leaves matched or failed for one user. `leaf_matches` is also what the engine's
indexes apply to the users whose data changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cohorthub.segments.model import (
    LAST_USED_APP,
    And,
    AttributeLeaf,
    CohortLeaf,
    EventLeaf,
    IdentityLeaf,
    Leaf,
    Node,
    Not,
    Or,
    SegmentLeaf,
    dump_filter,
    parse_time,
    relative_cutoff,
)
from cohorthub.segments.regex import regex_search


@dataclass(frozen=True, slots=True)
class UserFacts:
    """Everything a filter can ask about one user."""

    num: int
    external_id: str | None = None
    standard: Mapping[str, Any] = field(default_factory=dict)  # users columns (created_at: float)
    custom: Mapping[str, Any] = field(default_factory=dict)
    cohorts: frozenset[tuple[str, str]] = frozenset()  # (partner, cohort_id)
    events: Mapping[str, Sequence[float]] = field(default_factory=dict)  # name -> times
    purchases: Sequence[tuple[str, float]] = ()  # (product_id, time)
    sessions: Sequence[float] = ()  # SDK session start times


def attribute_value(leaf: AttributeLeaf, user: UserFacts) -> Any:
    """The raw value an attribute leaf compares (`last_used_app`: the latest session start)."""
    if leaf.custom:
        return user.custom.get(leaf.name)
    if leaf.name == LAST_USED_APP:
        return max(user.sessions) if user.sessions else None
    return user.standard.get(leaf.name)


Definitions = Mapping[str, Node]


def matches(node: Node, user: UserFacts, *, now: float, definitions: Definitions) -> bool:
    """Whether `user` is in the audience `node` describes at `now`."""
    if isinstance(node, And):
        return all(matches(c, user, now=now, definitions=definitions) for c in node.children)
    if isinstance(node, Or):
        return any(matches(c, user, now=now, definitions=definitions) for c in node.children)
    if isinstance(node, Not):
        return not matches(node.child, user, now=now, definitions=definitions)
    if isinstance(node, SegmentLeaf):
        inside = matches(definitions[node.segment_id], user, now=now, definitions=definitions)
        return inside if node.op == "includes" else not inside
    return leaf_matches(node, user, now=now)


def explain(node: Node, user: UserFacts, *, now: float, definitions: Definitions) -> dict[str, Any]:
    """The tree with `matched` on every node, for one user."""
    matched = matches(node, user, now=now, definitions=definitions)
    if isinstance(node, And | Or):
        kids = [explain(c, user, now=now, definitions=definitions) for c in node.children]
        return {"op": "and" if isinstance(node, And) else "or", "matched": matched, "children": kids}
    if isinstance(node, Not):
        return {
            "op": "not",
            "matched": matched,
            "child": explain(node.child, user, now=now, definitions=definitions),
        }
    return {"leaf": dump_filter(node), "matched": matched}


def leaf_matches(leaf: Leaf, user: UserFacts, *, now: float) -> bool:
    """Whether one leaf (other than segment membership) holds for `user`."""
    if isinstance(leaf, CohortLeaf):
        inside = (leaf.partner, leaf.cohort_id) in user.cohorts
        return inside if leaf.op == "includes" else not inside
    if isinstance(leaf, AttributeLeaf):
        return attribute_matches(leaf, attribute_value(leaf, user), now=now)
    if isinstance(leaf, EventLeaf):
        return event_matches(leaf, event_times(leaf, user), now=now)
    if isinstance(leaf, IdentityLeaf):
        return identity_matches(leaf, user)
    raise TypeError(f"segment leaves are resolved by the caller: {leaf!r}")


def identity_matches(leaf: IdentityLeaf, user: UserFacts) -> bool:
    """has external_id / email; email subscription state."""
    if leaf.field == "email_subscribe":
        return user.standard.get("email_subscribe") == leaf.value
    value = user.external_id if leaf.field == "external_id" else user.standard.get("email")
    present = isinstance(value, str) and value != ""
    return present if leaf.op == "exists" else not present


def typed_value(raw: Any, data_type: str) -> Any:
    """`raw` if it is a present value of `data_type` (times as Unix seconds), else None."""
    if data_type == "string":
        return raw if isinstance(raw, str) and raw != "" else None
    if data_type == "number":
        return raw if isinstance(raw, int | float) and not isinstance(raw, bool) else None
    if data_type == "boolean":
        return raw if isinstance(raw, bool) else None
    if data_type == "array":
        return raw if isinstance(raw, list) and raw else None
    return _as_time(raw)


def _as_time(raw: Any) -> float | None:
    if isinstance(raw, dict) and set(raw) == {"$time"}:
        raw = raw["$time"]
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, str):
        try:
            return parse_time(raw)
        except ValueError:
            return None
    return None


def attribute_matches(leaf: AttributeLeaf, raw: Any, *, now: float) -> bool:
    """Compare one attribute value by the leaf's data type and operator."""
    value = typed_value(raw, leaf.data_type)
    if leaf.op in ("exists", "blank"):
        return (value is not None) == (leaf.op == "exists")
    if leaf.op in ("not_equals", "ne"):
        return not _compare(leaf, value, "equals", now)
    return value is not None and _compare(leaf, value, leaf.op, now)


def _compare(leaf: AttributeLeaf, value: Any, op: str, now: float) -> bool:
    if value is None:
        return False
    operand = leaf.value
    if op in ("more_than_days_ago", "less_than_days_ago"):
        assert isinstance(operand, int | float)
        cutoff = relative_cutoff(now, operand)
        return bool(value < cutoff) if op == "more_than_days_ago" else bool(value >= cutoff)
    if op == "matches_regex":
        assert isinstance(operand, str)
        return regex_search(operand)(value)
    if op == "includes_value":
        return any(item == operand and not isinstance(item, bool) for item in value)
    if op.startswith("size_"):
        return _COMPARE[op[5:]](len(value), operand)
    return _COMPARE[op](value, operand)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "equals": lambda a, b: bool(a == b),
    "eq": lambda a, b: bool(a == b),
    "lt": lambda a, b: bool(a < b),
    "le": lambda a, b: bool(a <= b),
    "gt": lambda a, b: bool(a > b),
    "ge": lambda a, b: bool(a >= b),
    "before": lambda a, b: bool(a < b),
    "after": lambda a, b: bool(a > b),
    "starts_with": lambda a, b: bool(a.startswith(b)),
}


def event_times(leaf: EventLeaf, user: UserFacts) -> list[float]:
    """The times of the user's events or purchases the leaf is about."""
    if leaf.kind == "event":
        assert leaf.name is not None
        return list(user.events.get(leaf.name, ()))
    if leaf.kind == "session":
        return list(user.sessions)
    return [t for product, t in user.purchases if leaf.name is None or product == leaf.name]


def event_matches(leaf: EventLeaf, times: Sequence[float], *, now: float) -> bool:
    """Count or first/last-time rule over the given event times."""
    if leaf.time is not None:
        if not times:
            return False
        moment = min(times) if leaf.op.startswith("first") else max(times)
        return moment < leaf.time if leaf.op.endswith("before") else moment > leaf.time
    if leaf.within_days is not None:
        cutoff = relative_cutoff(now, leaf.within_days)
        times = [t for t in times if t >= cutoff]
    count, wanted = len(times), leaf.count or 0
    if leaf.op == "at_least":
        return count >= wanted
    return count <= wanted if leaf.op == "at_most" else count == wanted
