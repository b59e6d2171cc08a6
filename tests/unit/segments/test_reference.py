"""The reference evaluator on the conformance vectors TV-27…TV-29 and the leaf rules."""

from __future__ import annotations

from typing import Any

from cohorthub.segments.model import DAY, parse_filter
from cohorthub.segments.reference import UserFacts, explain, matches

NOW = 1_800_000_000.0
C1 = {"type": "cohort", "partner": "heap", "cohort_id": "c1", "op": "includes"}
C2 = {**C1, "cohort_id": "c2"}
PRO = {"type": "custom_attribute", "attribute": "plan", "data_type": "string", "op": "equals", "value": "pro"}


def _audience(raw: dict[str, Any], users: list[UserFacts]) -> set[int]:
    node = parse_filter(raw)
    return {u.num for u in users if matches(node, u, now=NOW, definitions={})}


def _user(num: int, *cohorts: str, **custom: Any) -> UserFacts:
    return UserFacts(num=num, cohorts=frozenset(("heap", c) for c in cohorts), custom=custom)


def test_tv27_includes_and_tv28_excludes() -> None:
    users = [_user(1, "c1"), _user(2, "c1"), _user(3)]
    assert _audience(C1, users) == {1, 2}
    assert _audience({**C1, "op": "excludes"}, users) == {3}


def test_tv29_a_and_b_or_c() -> None:
    users = [_user(1, "c1", plan="pro"), _user(2, "c1", "c2"), _user(3, "c1"), _user(4, "c2", plan="pro")]
    assert _audience({"and": [C1, {"or": [PRO, C2]}]}, users) == {1, 2}


def test_not_equals_includes_users_without_the_attribute() -> None:
    users = [_user(1, plan="pro"), _user(2, plan="free"), _user(3)]
    assert _audience({**PRO, "op": "not_equals"}, users) == {2, 3}


def test_a_value_of_another_type_never_matches_a_typed_comparison() -> None:
    leaf = {"type": "custom_attribute", "attribute": "n", "data_type": "number", "op": "ge", "value": 1}
    users = [_user(1, n=2), _user(2, n="2"), _user(3, n=True)]
    assert _audience(leaf, users) == {1}


def test_event_counts_within_a_window_and_at_most_counts_users_without_events() -> None:
    times = [NOW - 1 * DAY, NOW - 2 * DAY, NOW - 9 * DAY]
    users = [UserFacts(num=1, events={"play": times}), UserFacts(num=2)]
    recent = {"type": "event", "event": "play", "op": "at_least", "count": 2, "within_days": 7}
    assert _audience(recent, users) == {1}
    assert _audience({**recent, "count": 3}, users) == set()
    assert _audience({"type": "event", "event": "play", "op": "at_most", "count": 0}, users) == {2}


def test_explain_marks_every_leaf() -> None:
    node = parse_filter({"and": [C1, {"not": C2}]})
    tree = explain(node, _user(1, "c1", "c2"), now=NOW, definitions={})
    assert tree["matched"] is False
    assert [c.get("matched") for c in tree["children"]] == [True, False]
    assert tree["children"][1]["child"] == {"leaf": C2, "matched": True}
