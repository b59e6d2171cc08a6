from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cohorthub.partner_client.retry import Decision, Failure, RetryPolicy, parse_retry_after

POLICY = RetryPolicy(
    max_attempts_throttled=5, max_attempts_transient=3, base_delay=1.0, max_delay=8.0, jitter=0.5
)


@pytest.mark.parametrize("status", [429, 423])
def test_throttling_honours_retry_after(status: int) -> None:
    assert POLICY.decide(1, Failure(status, retry_after=7.0), jitter=0.9) == Decision(retry=True, delay=7.0)


def test_retry_after_is_capped() -> None:
    assert POLICY.decide(1, Failure(429, retry_after=10_000), 0.0).delay == POLICY.max_retry_after


@pytest.mark.parametrize("status", [None, 500, 502, 503, 504])
def test_transient_failures_back_off_exponentially_with_jitter(status: int | None) -> None:
    assert [POLICY.decide(n, Failure(status), 0.0).delay for n in (1, 2)] == [1.0, 2.0]
    assert POLICY.decide(2, Failure(status), 1.0).delay == 1.0  # jitter takes off up to half


def test_backoff_is_capped() -> None:
    assert POLICY.backoff(10, 0.0) == 8.0


def test_throttling_without_retry_after_backs_off() -> None:
    assert POLICY.decide(3, Failure(423), 0.0) == Decision(retry=True, delay=4.0)


def test_budgets_differ_for_throttling_and_transient_failures() -> None:
    assert POLICY.decide(2, Failure(503), 0.0).retry
    assert not POLICY.decide(3, Failure(503), 0.0).retry
    assert POLICY.decide(4, Failure(429), 0.0).retry
    assert not POLICY.decide(5, Failure(429), 0.0).retry


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    assert POLICY.decide(1, Failure(status), 0.0) == Decision(retry=False)


def test_parse_retry_after() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after("-4", now) == 0.0
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now) == 0.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
