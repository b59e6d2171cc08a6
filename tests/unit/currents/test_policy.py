"""The retry policy, row by row of the table in protocol §5.3."""

from __future__ import annotations

import random

import pytest

from cohorthub.currents.policy import Action, RetryPolicy

NOW = 1_800_000_000.0
HOUR = 3600.0


def policy() -> RetryPolicy:
    return RetryPolicy(rng=random.Random(1))


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_done(status: int) -> None:
    assert policy().decide(status, 1, None, NOW, None, size=100).action is Action.DONE


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 418, 302, 405, 409, 422, None])
def test_5xx_429_other_and_network_errors_back_off(status: int | None) -> None:
    decision = policy().decide(status, 1, None, NOW, None, size=100)
    assert decision.action is Action.RETRY
    assert 2.5 <= decision.delay <= 5.0


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    p = policy()
    for attempts, ceiling in [(1, 5), (2, 10), (3, 20), (5, 80), (8, 600), (30, 600)]:
        delay = p.decide(500, attempts, NOW - 60, NOW, None).delay
        assert ceiling / 2 <= delay <= ceiling


def test_retry_after_wins_when_longer() -> None:
    assert policy().decide(429, 1, None, NOW, 120.0).delay == 120.0
    assert policy().decide(503, 6, NOW, NOW, 1.0).delay >= 80.0


@pytest.mark.parametrize("status", [500, 429, None])
def test_5xx_and_429_drop_after_24_hours(status: int | None) -> None:
    p = policy()
    assert p.decide(status, 90, NOW - 24 * HOUR + 1, NOW, None).action is Action.RETRY
    assert p.decide(status, 90, NOW - 24 * HOUR, NOW, None).action is Action.DROP


def test_the_last_attempt_is_at_the_deadline() -> None:
    decision = policy().decide(500, 3, NOW - 24 * HOUR + 10, NOW, 3600.0)
    assert (decision.action, decision.delay) == (Action.RETRY, 10.0)


def test_400_splits_into_single_events_then_drops_the_single() -> None:
    assert policy().decide(400, 1, None, NOW, None, size=100).action is Action.SPLIT_SINGLE
    assert policy().decide(400, 1, NOW, NOW, None, size=1).action is Action.DROP


def test_413_splits_into_halves_until_a_single_event() -> None:
    assert policy().decide(413, 1, None, NOW, None, size=2).action is Action.SPLIT_HALF
    assert policy().decide(413, 1, None, NOW, None, size=1).action is Action.DROP


@pytest.mark.parametrize("status", [401, 403, 404])
def test_credential_errors_halt_retry_every_2_to_5_minutes_and_drop_after_48_hours(status: int) -> None:
    p = policy()
    for attempts in range(1, 30):
        decision = p.decide(status, attempts, NOW - 30 * HOUR, NOW, None)
        assert decision.action is Action.HALT
        assert 120 <= decision.delay <= 300
    assert p.decide(status, 9, NOW - 47.99 * HOUR, NOW, None).action is Action.HALT
    assert p.decide(status, 9, NOW - 48 * HOUR, NOW, None).action is Action.DROP


def test_windows_are_configurable() -> None:
    p = RetryPolicy(retry_window=60.0, auth_window=120.0, rng=random.Random(1))
    assert p.decide(500, 2, NOW - 60, NOW, None).action is Action.DROP
    assert p.decide(401, 2, NOW - 60, NOW, None).action is Action.HALT
    assert p.decide(401, 2, NOW - 120, NOW, None).action is Action.DROP
