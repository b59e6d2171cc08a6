"""The HTTP edge: the two partner endpoints, with retries, over httpx.

Responses are translated into the error tree here and nowhere else. Sleep, clock and jitter
are injected so tests never really wait.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from cohorthub.outbound import read_httpx_answer

from .errors import ApiError, AuthenticationError, RequestRejected, RetriesExhausted, UnexpectedResponse
from .model import Cohort, Target, iso8601
from .retry import Failure, RetryPolicy, parse_retry_after

RetryListener = Callable[[str, int, Failure, float], None]
_FIELD = re.compile(r"`(\w+)`")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PartnerApi:
    """``POST /partners/{partner}/cohorts`` and ``/cohorts/users`` for one target."""

    def __init__(
        self,
        target: Target,
        *,
        http: httpx.Client | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = _utc_now,
        jitter: Callable[[], float] = random.random,
        timeout: float = 30.0,
        on_retry: RetryListener | None = None,
    ) -> None:
        self._target = target
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._timeout = timeout
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._on_retry = on_retry
        self.requests = 0

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            self._http.close()

    def upsert_cohort(self, cohort: Cohort, created_at: datetime) -> None:
        """Create or rename a cohort."""
        self._post(
            "/cohorts",
            {
                **self._credentials(),
                "cohort_id": cohort.cohort_id,
                "name": cohort.name,
                "created_at": iso8601(created_at),
            },
        )

    def send_changes(self, cohort_id: str, changes: list[dict[str, Any]]) -> None:
        """Send ``cohort_changes`` (the caller keeps them within the 1,000-identifier limit)."""
        self._post(
            "/cohorts/users", {**self._credentials(), "cohort_id": cohort_id, "cohort_changes": changes}
        )

    def _credentials(self) -> dict[str, str]:
        return {
            "partner_api_key": self._target.partner_api_key.reveal(),
            "client_secret": self._target.data_import_key.reveal(),
        }

    def _post(self, path: str, body: dict[str, Any]) -> None:
        url = self._target.url(path)
        attempt = 0
        while True:
            attempt += 1
            self.requests += 1
            try:
                response = self._answer(url, body)
            except httpx.TransportError as exc:
                failure, detail = Failure(None), f"network error: {type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return
                failure = Failure(
                    response.status_code,
                    parse_retry_after(response.headers.get("retry-after"), self._clock()),
                )
                if not (failure.throttled or failure.transient):
                    raise _refusal(response, body, path)
                detail = f"HTTP {response.status_code}: {_message(response)}"
            decision = self._policy.decide(attempt, failure, self._jitter())
            if not decision.retry:
                raise RetriesExhausted(detail, status=failure.status, attempts=attempt, path=path)
            if self._on_retry is not None:
                self._on_retry(path, attempt, failure, decision.delay)
            self._sleep(decision.delay)

    def _answer(self, url: str, body: dict[str, Any]) -> httpx.Response:
        """POST `body`; the answer's status and headers, and at most the first 64 KiB of its body, read
        for at most the timeout (a server that streams or drips an answer without end costs nothing more)."""
        with self._http.stream("POST", url, json=body) as streamed:
            content = read_httpx_answer(streamed, time.monotonic() + self._timeout)
            kept = {k: v for k, v in streamed.headers.items() if k.lower() in _KEPT_HEADERS}
            return httpx.Response(streamed.status_code, headers=kept, content=content)


#: The answer's headers the client reads (the body kept is already decoded: no encoding headers).
_KEPT_HEADERS = ("content-type", "retry-after")


def _message(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return str(payload["message"])
    return response.text[:300]


def _refusal(response: httpx.Response, body: dict[str, Any], path: str) -> ApiError:
    message = _message(response)
    if response.status_code == 401:
        return AuthenticationError(message, hint=auth_hint(message), path=path)
    if response.status_code == 400:
        return RequestRejected(message, request_part=offending_part(message, body), path=path)
    return UnexpectedResponse(
        f"HTTP {response.status_code}: {message}", status=response.status_code, path=path
    )


def auth_hint(message: str) -> str:
    """What to check after a 401, from the server's message."""
    lowered = message.lower()
    if "partner api key" in lowered:
        return "check --partner-key: partner keys are issued per partner and per cluster (US, EU)"
    if "not enabled" in lowered:
        return "the data import key's workspace has not enabled this partner; enable it or use another key"
    if "client secret" in lowered:
        return "check --data-import-key: it may be mistyped or revoked; create a new one in the workspace"
    return "check --partner-key and --data-import-key, and that the partner is enabled for the workspace"


def offending_part(message: str, body: dict[str, Any], limit: int = 300) -> str:
    """The part of ``body`` a 400 message points at (a backquoted field name), shortened."""
    secret_free = {k: v for k, v in body.items() if k not in {"partner_api_key", "client_secret"}}
    for name in _FIELD.findall(message):
        if name in secret_free:
            return _shorten(f"{name}={secret_free[name]!r}", limit)
    if "cohort_changes" in secret_free:
        changes = secret_free["cohort_changes"]
        counts = [
            {key: len(value) for key, value in change.items() if isinstance(value, list)}
            for change in (changes if isinstance(changes, list) else [])
        ]
        total = sum(sum(count.values()) for count in counts)
        return _shorten(f"cohort_changes: {len(counts)} objects, {total} identifiers, sizes {counts}", limit)
    return _shorten(repr(secret_free), limit)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
