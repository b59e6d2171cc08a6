"""The retry rules of Custom HTTP Currents, as a pure value object (protocol §5.3).

| Status            | Action                                                           |
|-------------------|------------------------------------------------------------------|
| 2xx               | done                                                             |
| 5xx, 429, other   | exponential backoff with jitter, honouring Retry-After; drop 24 h |
| network / timeout | as 5xx                                                           |
| 400               | split into single-event batches; a single event → dropped        |
| 413               | split into halves; a single event → dropped                      |
| 401, 403, 404     | connector halted, retried every 2–5 min; drop after 48 h          |

Windows count from the batch's first failed attempt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum

AUTH_STATUSES = frozenset({401, 403, 404})


class Action(Enum):
    """What to do with a batch after an attempt."""

    DONE = "done"
    RETRY = "retry"  # same batch again after `delay`
    HALT = "halt"  # credentials rejected: connector halted, same batch again after `delay`
    SPLIT_SINGLE = "split_single"  # re-send every event as its own batch, now
    SPLIT_HALF = "split_half"  # re-send as two smaller batches, now
    DROP = "drop"  # dead-letter every event of the batch


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of `RetryPolicy.decide`."""

    action: Action
    delay: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff and drop windows; every number is configurable, `rng` makes jitter testable."""

    retry_window: float = 24 * 3600.0
    auth_window: float = 48 * 3600.0
    base_delay: float = 5.0
    max_delay: float = 600.0
    auth_delay_min: float = 120.0
    auth_delay_max: float = 300.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def decide(
        self,
        status: int | None,
        attempts: int,
        first_failure_at: float | None,
        now: float,
        retry_after: float | None,
        *,
        size: int = 1,
    ) -> Decision:
        """Decide after attempt number `attempts` (1-based) of a `size`-event batch got `status`.

        `status` None means a network error or timeout; `first_failure_at` is the time of the
        batch's first failed attempt (None when this is the first failure).
        """
        if status is not None and 200 <= status < 300:
            return Decision(Action.DONE)
        label = f"HTTP {status}" if status is not None else "network error"
        started = now if first_failure_at is None else first_failure_at
        if status == 400:
            if size > 1:
                return Decision(Action.SPLIT_SINGLE, reason=f"{label}: split into single events")
            return Decision(Action.DROP, reason=f"{label} for a single event")
        if status == 413:
            if size > 1:
                return Decision(Action.SPLIT_HALF, reason=f"{label}: split into smaller batches")
            return Decision(Action.DROP, reason=f"{label} for a single event")
        if status in AUTH_STATUSES:
            return self._later(
                Action.HALT,
                started + self.auth_window,
                now,
                self.rng.uniform(self.auth_delay_min, self.auth_delay_max),
                f"{label}: credentials rejected",
            )
        delay = self._backoff(attempts)
        if retry_after is not None and retry_after > delay:
            delay = retry_after
        return self._later(Action.RETRY, started + self.retry_window, now, delay, label)

    def _backoff(self, attempts: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, min(attempts - 1, 60)))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    @staticmethod
    def _later(action: Action, deadline: float, now: float, delay: float, label: str) -> Decision:
        if now >= deadline:
            return Decision(Action.DROP, reason=f"{label}: not delivered within the retry window")
        # the last attempt happens at the deadline; a failure then drops the batch
        return Decision(action, delay=min(delay, deadline - now), reason=label)
