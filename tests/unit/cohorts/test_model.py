"""Parsing cohort requests and diffing membership, without a database."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroaring import BitMap

from cohorthub.cohorts.errors import COHORT_CHANGES_TEXT, CREATED_AT_TEXT, TOO_MANY_TEXT, InvalidCohortRequest
from cohorthub.cohorts.model import (
    UNMATCHED_SAMPLE_SIZE,
    Matches,
    diff_membership,
    distinct_identifiers,
    merge_unmatched_sample,
    parse_cohort_changes,
    parse_cohort_name,
    parse_time,
)


def _changes(changes: Any, cohort_id: Any = "c") -> Any:
    return parse_cohort_changes({"cohort_id": cohort_id, "cohort_changes": changes}, identifier_max_length=10)


def _fails(changes: Any) -> InvalidCohortRequest:
    with pytest.raises(InvalidCohortRequest) as info:
        _changes(changes)
    return info.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-12-01T17:40:04.055Z", 1669916404.055),
        ("2021-01-21T19:20:30+05:00", 1611238830.0),
        ("2021-01-21T14:20:30", 1611238830.0),
    ],
)
def test_iso8601_times(text: str, expected: float) -> None:
    assert parse_time(text) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["yesterday", "", 1611238830, None, "2021-13-01"])
def test_bad_times(value: object) -> None:
    with pytest.raises(InvalidCohortRequest) as info:
        parse_time(value)
    assert info.value.message == CREATED_AT_TEXT


def test_name_body_checks_fields_in_order() -> None:
    with pytest.raises(InvalidCohortRequest) as info:
        parse_cohort_name({"cohort_id": "", "name": "", "created_at": "x"})
    assert info.value.message == "`cohort_id` must be a valid string"
    with pytest.raises(InvalidCohortRequest) as info:
        parse_cohort_name({"cohort_id": "c", "name": "   ", "created_at": "x"})
    assert info.value.message == "`name` must be a non-empty string"
    parsed = parse_cohort_name({"cohort_id": "c", "name": "N", "created_at": "2021-01-21"})
    assert (parsed.cohort_id, parsed.name) == ("c", "N")


def test_segment_shape_and_single_alias_object() -> None:
    parsed = _changes(
        [
            {"user_ids": ["u1"], "device_ids": [], "aliases": [], "should_remove": None},
            {"aliases": {"alias_label": "email", "alias_name": "a@x"}, "should_remove": True},
        ]
    )
    assert [c.remove for c in parsed.changes] == [False, True]
    assert parsed.changes[1].aliases == [("email", "a@x")]
    assert parsed.identifiers() == 2


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ("[]", "`cohort_changes` is not an array"),
        ([1], "`cohort_changes[0]` is not an object"),
        ([{"user_ids": None}], "`cohort_changes[0]` has none of"),
        ([{"user_ids": ["a", 2]}], "`cohort_changes[0].user_ids[1]` is not a string"),
        ([{"device_ids": "a"}], "`cohort_changes[0].device_ids` is not an array"),
        ([{"user_ids": [], "should_remove": "true"}], "`cohort_changes[0].should_remove`"),
        ([{"aliases": [{"alias_label": "e"}]}], "`cohort_changes[0].aliases[0]` needs"),
    ],
)
def test_shape_errors_use_the_documented_text_and_name_the_path(changes: Any, path: str) -> None:
    error = _fails(changes)
    assert error.message == COHORT_CHANGES_TEXT
    assert error.errors[0].startswith(path)


def test_the_limit_counts_every_identifier_of_every_change() -> None:
    alias = {"alias_label": "e", "alias_name": "n"}
    assert _changes([{"user_ids": ["u"] * 600}, {"device_ids": ["d"] * 300, "aliases": [alias] * 100}])
    error = _fails([{"user_ids": ["u"] * 501}, {"user_ids": ["u"] * 500}])
    assert error.message == TOO_MANY_TEXT
    assert _fails([{"user_ids": ["u"] * 1001}, 5]).message == COHORT_CHANGES_TEXT, "shape is checked first"


def test_empty_or_long_identifiers_name_the_path() -> None:
    assert _fails([{"user_ids": ["ok", "12345678901"]}]).message.startswith("`cohort_changes[0].user_ids[1]`")
    long_alias = [{"aliases": [{"alias_label": "", "alias_name": "n"}]}]
    assert _fails(long_alias).message.startswith("`cohort_changes[0].aliases[0].alias_label`")


def test_later_change_objects_win_and_the_diff_is_against_current() -> None:
    request = _changes(
        [
            {"user_ids": ["a", "b", "a"], "device_ids": ["dev-anon", "dev-known"]},
            {"user_ids": ["a", "c"], "should_remove": True},
            {"aliases": [{"alias_label": "email", "alias_name": "x"}]},
        ]
    )
    matches = Matches(
        external_ids={"a": 1, "b": 2, "c": 3}, device_ids={"dev-anon": 4}, aliases={("email", "x"): 5}
    )
    diff = diff_membership(request, matches, BitMap([2, 3]))
    assert (list(diff.entered), list(diff.left)) == ([4, 5], [3])
    assert (diff.matched, diff.unmatched) == (7, 1)
    assert diff.unmatched_sample == ["device_ids:dev-known"]
    assert distinct_identifiers(request) == ({"a", "b", "c"}, {"dev-anon", "dev-known"}, {("email", "x")})


def test_unmatched_sample_is_bounded_and_newest_last() -> None:
    request = _changes([{"user_ids": [f"u{i}" for i in range(50)]}])
    diff = diff_membership(request, Matches({}, {}, {}), BitMap())
    assert len(diff.unmatched_sample) == UNMATCHED_SAMPLE_SIZE
    merged = merge_unmatched_sample(["old", "u0"], ["u0", "new"])
    assert merged == ["old", "u0", "new"]
    assert len(merge_unmatched_sample(diff.unmatched_sample, ["z"])) == UNMATCHED_SAMPLE_SIZE


@settings(max_examples=200, deadline=None)
@given(
    current=st.sets(st.integers(0, 9)),
    steps=st.lists(st.tuples(st.booleans(), st.lists(st.integers(0, 12), max_size=6)), max_size=6),
)
def test_diff_equals_applying_each_change_in_order(
    current: set[int], steps: list[tuple[bool, list[int]]]
) -> None:
    """Reference: walk the change objects one by one over a Python set; ids 10..12 match nobody."""
    request = _changes(
        [{"user_ids": [f"u{n}" for n in ids], "should_remove": remove} for remove, ids in steps]
    )
    expected = set(current)
    for remove, ids in steps:
        known = {n for n in ids if n < 10}
        expected = expected - known if remove else expected | known
    diff = diff_membership(request, Matches({f"u{n}": n for n in range(10)}, {}, {}), BitMap(current))
    assert (set(current) | set(diff.entered)) - set(diff.left) == expected
    assert set(diff.entered).isdisjoint(current)
    assert set(diff.left) <= current
