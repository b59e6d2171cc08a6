"""Reading and writing times as ISO-8601 text."""

from __future__ import annotations

import pytest

from cohorthub.clock import format_iso, parse_iso


def test_round_trip_with_offsets_and_dates() -> None:
    assert parse_iso("2024-01-02T03:04:05+01:00") == parse_iso("2024-01-02T02:04:05Z")
    assert format_iso(parse_iso("2024-01-02")) == "2024-01-02T00:00:00.000Z"
    assert format_iso(parse_iso("9999-12-31T23:59:59Z")) == "9999-12-31T23:59:59.000Z"


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-00:01", "0001-01-01T00:00:00+00:01", "soon", ""])
def test_times_that_cannot_be_written_back_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_iso(text)


def test_stored_values_out_of_range_are_shown_at_the_nearest_end() -> None:
    assert format_iso(1e15) == "9999-12-31T23:59:59.000Z"
    assert format_iso(-1e15, timespec="seconds") == "0001-01-01T00:00:00Z"
