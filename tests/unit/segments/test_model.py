"""Parsing and validating filter trees: every error names the offending node."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from cohorthub.segments.errors import InvalidSegment
from cohorthub.segments.model import (
    MAX_DEPTH,
    And,
    AttributeLeaf,
    CohortLeaf,
    Not,
    dump_filter,
    parse_filter,
)
from tests.unit.segments.strategies import trees

ES = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}
NUM = {"type": "custom_attribute", "attribute": "n", "data_type": "number"}
TRIAL = {"type": "cohort", "partner": "heap", "cohort_id": "heap-123", "op": "includes"}


def test_the_marketers_filter_parses_into_the_ast() -> None:
    raw = {"and": [TRIAL, {"not": {**TRIAL, "cohort_id": "heap-9"}}, ES]}
    assert parse_filter(raw) == And(
        (
            CohortLeaf("heap", "heap-123", "includes"),
            Not(CohortLeaf("heap", "heap-9", "includes")),
            AttributeLeaf("country", False, "string", "equals", "ES"),
        )
    )


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"and": [TRIAL, ES, {"not": {**ES, "value": 5}}]}, "filter.and[2].not.value"),
        ({"and": [TRIAL, {**ES, "colour": "red"}]}, "filter.and[1].colour"),
        ({"or": []}, "filter.or"),
        ({"and": [{"type": "planet"}]}, "filter.and[0].type"),
        ({**ES, "op": "greater"}, "filter.op"),
        ({"type": "attribute", "attribute": "shoe_size", "op": "exists"}, "filter.attribute"),
        ({**NUM, "op": "gt", "value": "3"}, "filter.value"),
        ({**NUM, "data_type": "string", "op": "matches_regex", "value": "("}, "filter.value"),
        ({"type": "event", "event": "play", "op": "at_least", "count": -1}, "filter.count"),
        ({"type": "event", "event": "play", "op": "last_before", "time": "yesterday"}, "filter.time"),
        ({"type": "cohort", "partner": "heap", "cohort_id": 7, "op": "includes"}, "filter.cohort_id"),
        ({"not": ES, "and": [ES]}, "filter.not"),
        ([ES], "filter"),
    ],
)  # fmt: skip
def test_bad_nodes_are_rejected_with_their_path(raw: Any, path: str) -> None:
    with pytest.raises(InvalidSegment) as info:
        parse_filter(raw)
    assert info.value.path == path
    assert info.value.message.startswith(path + ": ")


def test_nesting_deeper_than_the_limit_is_rejected() -> None:
    raw: dict[str, Any] = ES
    for _ in range(MAX_DEPTH):
        raw = {"not": raw}
    with pytest.raises(InvalidSegment, match="nested at most"):
        parse_filter(raw)
    parse_filter(raw["not"])  # one level less is fine


def test_cohort_name_shown_by_the_api_is_accepted_back() -> None:
    assert parse_filter({**TRIAL, "cohort_name": "Trial abandoners"}) == CohortLeaf(
        "heap", "heap-123", "includes"
    )


@settings(max_examples=60, deadline=None)
@given(trees())
def test_dump_and_parse_round_trip(raw: dict[str, Any]) -> None:
    node = parse_filter(raw)
    assert parse_filter(dump_filter(node)) == node
