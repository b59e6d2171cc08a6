"""A dashboard CSV export keeps every value text when a spreadsheet opens it."""

from __future__ import annotations

import pytest

from cohorthub.web.segments import spreadsheet_text


@pytest.mark.parametrize("value", ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")'])
def test_a_value_a_spreadsheet_would_run_starts_with_an_apostrophe(value: str) -> None:
    assert spreadsheet_text(value) == "'" + value


@pytest.mark.parametrize("value", ["", "u1", "5f1a2b3c4d5e6f7a8b9c0d1e", "a=b", "x-1", " =1", "'=1"])
def test_any_other_value_is_unchanged(value: str) -> None:
    assert spreadsheet_text(value) == value
