"""Hypothesis strategies: random user populations and random filter trees over them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from cohorthub.segments.model import DAY, format_time
from cohorthub.segments.reference import UserFacts

NOW = 1_800_000_000.0
COHORTS = ("c1", "c2")


def _ago(days: float) -> str:
    return format_time(NOW - days * DAY)


LEAVES: list[dict[str, Any]] = [
    *({"type": "cohort", "partner": "heap", "cohort_id": c, "op": op}
      for c in COHORTS for op in ("includes", "excludes")),
    {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"},
    {"type": "attribute", "attribute": "country", "op": "not_equals", "value": "ES"},
    {"type": "attribute", "attribute": "country", "op": "starts_with", "value": "E"},
    {"type": "attribute", "attribute": "country", "op": "matches_regex", "value": "^(ES|FR)$"},
    {"type": "attribute", "attribute": "country", "op": "blank"},
    {"type": "attribute", "attribute": "created_at", "op": "before", "value": _ago(10)},
    {"type": "attribute", "attribute": "created_at", "op": "more_than_days_ago", "value": 5},
    {"type": "attribute", "attribute": "created_at", "op": "less_than_days_ago", "value": 5},
    {"type": "custom_attribute", "attribute": "plan", "data_type": "string", "op": "equals", "value": "pro"},
    {"type": "custom_attribute", "attribute": "plan", "data_type": "string", "op": "blank"},
    {"type": "custom_attribute", "attribute": "score", "data_type": "number", "op": "gt", "value": 2},
    {"type": "custom_attribute", "attribute": "score", "data_type": "number", "op": "le", "value": 2.5},
    {"type": "custom_attribute", "attribute": "score", "data_type": "number", "op": "ne", "value": 1},
    {"type": "custom_attribute", "attribute": "flag", "data_type": "boolean", "op": "equals", "value": True},
    {"type": "custom_attribute", "attribute": "país", "data_type": "string", "op": "starts_with",
     "value": "s"},
    {"type": "custom_attribute", "attribute": "a.b", "data_type": "number", "op": "ge", "value": 1},
    {"type": "custom_attribute", "attribute": "tags", "data_type": "array", "op": "includes_value",
     "value": "a"},
    {"type": "custom_attribute", "attribute": "tags", "data_type": "array", "op": "size_gt", "value": 1},
    {"type": "custom_attribute", "attribute": "signup", "data_type": "time", "op": "after", "value": _ago(3)},
    {"type": "custom_attribute", "attribute": "signup", "data_type": "time", "op": "exists"},
    {"type": "event", "event": "play", "op": "at_least", "count": 2},
    {"type": "event", "event": "play", "op": "at_most", "count": 1},
    {"type": "event", "event": "play", "op": "exactly", "count": 0},
    {"type": "event", "event": "play", "op": "at_least", "count": 1, "within_days": 3},
    {"type": "event", "event": "play", "op": "first_before", "time": _ago(5)},
    {"type": "event", "event": "play", "op": "last_after", "time": _ago(2)},
    {"type": "purchase", "product_id": "P", "op": "at_least", "count": 1},
    {"type": "purchase", "op": "at_most", "count": 1, "within_days": 7},
    {"type": "purchase", "op": "last_before", "time": _ago(1)},
    {"type": "sessions", "op": "at_least", "count": 2, "within_days": 3},
    {"type": "sessions", "op": "at_most", "count": 1},
    {"type": "sessions", "op": "exactly", "count": 0, "within_days": 7},
    {"type": "last_used_app", "op": "less_than_days_ago", "value": 2},
    {"type": "last_used_app", "op": "more_than_days_ago", "value": 5},
    {"type": "last_used_app", "op": "after", "value": _ago(3)},
    {"type": "last_used_app", "op": "blank"},
    {"type": "identity", "field": "external_id", "op": "exists"},
    {"type": "identity", "field": "email", "op": "blank"},
    {"type": "identity", "field": "email_subscribe", "op": "equals", "value": "opted_in"},
]  # fmt: skip


def trees(max_leaves: int = 6) -> st.SearchStrategy[dict[str, Any]]:
    """Random and/or/not trees over the leaf pool."""
    return st.recursive(
        st.sampled_from(LEAVES),
        lambda kids: st.one_of(
            st.lists(kids, min_size=1, max_size=3).map(lambda xs: {"and": xs}),
            st.lists(kids, min_size=1, max_size=3).map(lambda xs: {"or": xs}),
            kids.map(lambda x: {"not": x}),
        ),
        max_leaves=max_leaves,
    )


@dataclass
class Person:
    """One generated user."""

    external_id: str | None
    columns: dict[str, Any]
    custom: dict[str, Any]
    created_days_ago: float
    events: list[tuple[str, float]] = field(default_factory=list)  # (name, days ago)
    purchases: list[tuple[str, float]] = field(default_factory=list)
    cohorts: set[str] = field(default_factory=set)
    sessions: list[float] = field(default_factory=list)  # days ago

    def facts(self, num: int) -> UserFacts:
        """What the reference evaluator sees."""
        events: dict[str, list[float]] = {}
        for name, ago in self.events:
            events.setdefault(name, []).append(NOW - ago * DAY)
        return UserFacts(
            num=num,
            external_id=self.external_id,
            standard={**self.columns, "created_at": NOW - self.created_days_ago * DAY},
            custom=self.custom,
            cohorts=frozenset(("heap", c) for c in self.cohorts),
            events=events,
            purchases=[(p, NOW - ago * DAY) for p, ago in self.purchases],
            sessions=[NOW - ago * DAY for ago in self.sessions],
        )


_days = st.sampled_from([0.5, 1.5, 2.5, 4.0, 6.0, 12.0])
_custom = st.fixed_dictionaries(
    {},
    optional={
        "plan": st.sampled_from(["pro", "free", "", 3]),
        "score": st.sampled_from([1, 2.5, 10, "2", True]),
        "flag": st.booleans(),
        "país": st.sampled_from(["sí", "no", "", 1]),
        "a.b": st.sampled_from([0, 1.5, "1", None]),
        "tags": st.lists(st.sampled_from(["a", "b", 1]), max_size=3),
        "signup": st.sampled_from([_ago(1), _ago(8), "not a time", {"$time": _ago(2)}]),
    },
)


@st.composite
def people(draw: st.DrawFn, max_size: int = 8) -> list[Person]:
    """A small random population."""
    count = draw(st.integers(0, max_size))
    out = []
    for i in range(count):
        columns = {
            "country": draw(st.sampled_from(["ES", "FR", "EE", None, ""])),
            "email": draw(st.sampled_from([f"u{i}@x.com", None, ""])),
            "email_subscribe": draw(st.sampled_from(["opted_in", "subscribed", "unsubscribed", None])),
        }
        out.append(
            Person(
                external_id=draw(st.sampled_from([f"u{i}", None])),
                columns=columns,
                custom=draw(_custom),
                created_days_ago=draw(_days),
                events=draw(st.lists(st.tuples(st.sampled_from(["play", "other"]), _days), max_size=3)),
                purchases=draw(st.lists(st.tuples(st.sampled_from(["P", "Q"]), _days), max_size=2)),
                cohorts=draw(st.sets(st.sampled_from(COHORTS))),
                sessions=draw(st.lists(_days, max_size=3)),
            )
        )
    return out
