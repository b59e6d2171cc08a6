"""The one place that reads the wall clock, and the one way times are read from and written as text.

Everything else takes `now` as an argument. Times are Unix seconds (UTC); as text they are
ISO-8601. Only instants from year 1 to year 9999 in UTC can be written back as text, so
`parse_iso` refuses any other and `format_iso` shows a value already stored outside that
range as the nearest end of it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

#: 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z as Unix seconds.
EARLIEST, LATEST = -62_135_596_800.0, 253_402_300_799.0


def now() -> float:
    """Current Unix time in seconds (UTC)."""
    return time.time()


def parse_iso(text: str) -> float:
    """ISO-8601 text as Unix seconds (UTC when no offset); ValueError unless in years 1 to 9999 UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} falls outside the years 1 to 9999 in UTC") from None
    return moment.timestamp()


def format_iso(seconds: float, *, timespec: str = "milliseconds") -> str:
    """Unix seconds as ISO-8601 UTC (`…Z`), clamped to the years 1 to 9999."""
    shown = datetime.fromtimestamp(min(max(seconds, EARLIEST), LATEST), UTC)
    return shown.isoformat(timespec=timespec).replace("+00:00", "Z")
