"""What becomes of a sent batch, and of its connector: attempts turned into outcomes (pure)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from cohorthub.currents.policy import Action, RetryPolicy
from cohorthub.currents.ports import Claim, Resolution, SendResult
from cohorthub.currents.wire import parse_retry_after

log = logging.getLogger("cohorthub.currents")

WAITING = frozenset({"retry", "halt"})  # the batch waits; the connector backs off or is halted
FAILED = frozenset({"retry", "halt", "split", "drop"})  # the attempt did not deliver the batch
_KINDS = {
    Action.DONE: "ack",
    Action.RETRY: "retry",
    Action.HALT: "halt",
    Action.SPLIT_SINGLE: "split",
    Action.SPLIT_HALF: "split",
    Action.DROP: "drop",
}


def resolve_attempt(policy: RetryPolicy, claim: Claim, result: SendResult, now: float) -> Resolution:
    """Apply the retry policy to one attempt of `claim` that got `result` at `now`."""
    size = len(claim.seqs)
    attempts = claim.attempts + 1
    wait = parse_retry_after(result.retry_after, now=now)
    decision = policy.decide(result.status, attempts, claim.first_failure_at, now, wait, size=size)
    kind = _KINDS[decision.action]
    if kind == "ack":
        return Resolution("ack", claim.batch_id, size, status=result.status)
    first = claim.first_failure_at if claim.first_failure_at is not None else now
    message = f"{decision.reason}: {result.error}" if result.error else decision.reason
    if decision.action is Action.SPLIT_SINGLE:
        parts: tuple[tuple[int, ...], ...] = tuple((seq,) for seq in claim.seqs)
    elif decision.action is Action.SPLIT_HALF:
        half = (size + 1) // 2
        parts = (claim.seqs[:half], claim.seqs[half:])
    else:
        parts = ()
    if kind == "drop":
        log.warning("currents: dead-lettering %d event(s): %s", size, message)
    return Resolution(
        kind,
        claim.batch_id,
        size,
        attempts=attempts,
        first_failure_at=first,
        next_attempt_at=now + decision.delay,
        parts=parts,
        status=result.status,
        error=message,
    )


def connector_state_after(resolutions: Sequence[Resolution], now: float) -> dict[str, Any]:
    """The connector fields a round's outcomes change, applied in order (the last one wins).

    A 2xx clears the backoff; a retry or halt sets it until the batch's next attempt; a dropped
    batch ends it (the next batch starts afresh); every failure records its status and error.
    """
    state: dict[str, Any] = {}
    for r in resolutions:
        if r.kind == "ack":
            state.update(blocked_until=None, halted=False, last_success_at=now)
        elif r.kind in WAITING:
            state.update(blocked_until=r.next_attempt_at, halted=r.kind == "halt")
        elif r.kind == "drop":
            state.update(blocked_until=None, halted=False)
        if r.kind in FAILED:
            state.update(last_status=r.status, last_error=r.error, last_error_at=now)
    return state
