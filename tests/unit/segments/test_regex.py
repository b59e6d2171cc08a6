"""`matches_regex` on RE2: linear time, and the constructs it cannot run refused at definition."""

from __future__ import annotations

import pytest

from cohorthub.segments.errors import InvalidSegment
from cohorthub.segments.model import parse_filter
from cohorthub.segments.regex import regex_problem, regex_search


def _leaf(pattern: str) -> dict[str, object]:
    return {"type": "attribute", "attribute": "first_name", "op": "matches_regex", "value": pattern}


def test_catastrophic_backtracking_patterns_run_in_linear_time() -> None:
    # Python's `re` needs about 2**60 steps here; RE2 scans the text once.
    assert regex_search("^(a+)+$")("a" * 60 + "!") is False
    assert regex_search("^(a|aa)*$")("a" * 5000) is True


def test_search_semantics() -> None:
    assert regex_search("an")("Ana Banana") is True
    assert regex_search("^an")("Ana") is False
    assert regex_search("(?i)^an")("Ana") is True
    assert regex_search(r"\p{Lu}")("élan") is False


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [(r"(a)\1", "invalid escape sequence"), ("(?=x)", "invalid perl operator"),
     ("(?<!x)y", "invalid perl operator"),
     ("a{1001}", "invalid repetition size"), ("(", "missing )"), ("x" * 513, "at most 512 characters")],
)  # fmt: skip
def test_constructs_re2_cannot_run_are_refused_with_the_node_path(pattern: str, problem: str) -> None:
    with pytest.raises(InvalidSegment) as caught:
        parse_filter({"or": [_leaf(pattern)]})
    assert caught.value.path == "filter.or[0].value"
    assert problem in caught.value.problem
    assert regex_search(pattern)("xy") is False


def test_valid_patterns_have_no_problem() -> None:
    assert regex_problem(r"^[[:alpha:]]+\d{2,4}(?P<rest>.*)$") is None
