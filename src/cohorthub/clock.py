"""The one place that reads the wall clock; everything else takes `now` as an argument."""

from __future__ import annotations

import time


def now() -> float:
    """Current Unix time in seconds (UTC)."""
    return time.time()
