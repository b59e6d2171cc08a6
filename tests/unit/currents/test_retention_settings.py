"""The retention setting and the `--older-than` period."""

from __future__ import annotations

import pytest

from cohorthub.cli.currents import parse_period
from cohorthub.config import Settings
from cohorthub.currents.errors import InvalidConnector


def test_the_retention_defaults_to_seven_days_and_reads_the_environment() -> None:
    assert Settings.from_env({}).outbox_retention_seconds == 7 * 86400.0
    assert Settings.from_env({"COHORTHUB_OUTBOX_RETENTION": "36h"}).outbox_retention_seconds == 36 * 3600.0


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 604800.0), ("36h", 129600.0), ("90m", 5400.0), ("45", 45.0)]
)
def test_periods(text: str, seconds: float) -> None:
    assert parse_period(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-1d", "d", "soon", "inf", "nan"])
def test_bad_periods_are_refused(text: str) -> None:
    with pytest.raises(InvalidConnector, match="--older-than must be a positive duration"):
        parse_period(text)
