"""The query-parameter parser: ASCII digits only, ranges, cursors, NUL refused before routing."""

from __future__ import annotations

import pytest

from cohorthub.api import params
from cohorthub.api.params import InvalidParameter


@pytest.mark.parametrize("text", ["\u00b2", "\u0663", "\uff11", "-1", "+1", " 1", "1e3", "", "9" * 20])
def test_integers_are_ascii_digits_only(text: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        params.integer({"limit": text}, "limit", default=5, low=0, high=10**18)
    assert caught.value.message == "Query parameter `limit` must be an integer from 0 to 1000000000000000000"


def test_integers_in_range_and_default() -> None:
    assert params.integer({}, "page", default=3, low=0, high=9) == 3
    assert params.integer({"page": "09"}, "page", default=3, low=0, high=9) == 9
    with pytest.raises(InvalidParameter):
        params.integer({"page": "10"}, "page", default=3, low=0, high=9)


def test_cursors_are_user_numbers() -> None:
    assert params.cursor({}) is None
    assert params.cursor({"cursor": ""}) is None
    assert params.cursor({"cursor": str(2**32 - 1)}) == 2**32 - 1
    for bad in (str(2**32), "\u00b2", "x"):
        with pytest.raises(InvalidParameter, match="`cursor`"):
            params.cursor({"cursor": bad})


def test_nul_in_path_or_query_is_refused_before_routing() -> None:
    assert params.url_error({"path": "/segments/x", "query_string": b"limit=1"}) is None
    assert params.url_error({"path": "/segments/a\x00b", "query_string": b""}) is not None
    error = params.url_error({"path": "/cohorts", "query_string": b"partner=a%00b"})
    assert error is not None
    assert error.message == "Query parameter `partner` must not contain NUL characters"
