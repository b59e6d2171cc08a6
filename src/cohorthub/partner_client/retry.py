"""The retry decision as a pure value object, and ``Retry-After`` parsing.

``RetryPolicy.decide(attempt, failure, jitter)`` says whether to try again and after how long.
Throttling (429) and locks (423) honour ``Retry-After`` and get a larger budget than server and
network errors (5xx, connection resets, timeouts). Everything else is not retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

THROTTLED = frozenset({423, 429})


@dataclass(frozen=True)
class Failure:
    """One failed attempt: an HTTP status, or ``None`` for a network error."""

    status: int | None
    retry_after: float | None = None

    @property
    def throttled(self) -> bool:
        """429 or 423: the server asks us to come back later."""
        return self.status in THROTTLED

    @property
    def transient(self) -> bool:
        """A network error or a 5xx."""
        return self.status is None or self.status >= 500


@dataclass(frozen=True)
class Decision:
    """Retry after ``delay`` seconds, or give up (``retry`` false)."""

    retry: bool
    delay: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long to wait; ``decide`` is pure (jitter is passed in)."""

    max_attempts_throttled: int = 20
    max_attempts_transient: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0
    jitter: float = 0.5

    def decide(self, attempt: int, failure: Failure, jitter: float) -> Decision:
        """Decide after failed attempt number ``attempt`` (1-based); ``jitter`` is uniform in [0, 1)."""
        if failure.throttled:
            limit = self.max_attempts_throttled
        elif failure.transient:
            limit = self.max_attempts_transient
        else:
            return Decision(retry=False)
        if attempt >= limit:
            return Decision(retry=False)
        if failure.throttled and failure.retry_after is not None:
            return Decision(retry=True, delay=min(max(failure.retry_after, 0.0), self.max_retry_after))
        return Decision(retry=True, delay=self.backoff(attempt, jitter))

    def backoff(self, attempt: int, jitter: float) -> float:
        """Exponential backoff capped at ``max_delay``, reduced by up to ``jitter`` of itself."""
        raw = min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)
        return raw * (1.0 - self.jitter * jitter)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); ``None`` if absent."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)
