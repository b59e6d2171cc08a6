"""The webhook transport: httpx, retries with backoff on 5xx, 429 and network errors; at most the
first 64 KiB of an answer is read (its start is the failure's `raw_response`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from cohorthub.messaging.ports import Outcome, OutgoingWebhook
from cohorthub.outbound import read_httpx_answer

RETRYABLE = {429, 500, 502, 503, 504}


class HttpWebhookTransport:
    """Sends webhook requests; `attempts` tries in all, waiting `backoff * 2**n` between them."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = httpx.Client(timeout=timeout, headers={"User-Agent": "cohorthub-webhooks"})
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._sleep = sleep

    def send(self, request: OutgoingWebhook) -> Outcome:
        """Send with retries; the outcome counts the retries made."""
        status: int | None = None
        detail = ""
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(self._backoff * 2 ** (attempt - 1))
            deadline = time.monotonic() + self._timeout
            try:
                with self._client.stream(
                    request.method,
                    request.url,
                    headers=request.headers,
                    content=request.body if request.method != "GET" else None,
                ) as response:
                    answer = read_httpx_answer(response, deadline)
            except httpx.HTTPError as exc:
                status, detail = None, f"{type(exc).__name__}: {exc}"
                continue
            except (httpx.InvalidURL, ValueError) as exc:  # a URL or header no request can carry: no retry
                return Outcome("failed", f"{type(exc).__name__}: {exc}", None, retries=attempt)
            status, detail = response.status_code, answer[:1000].decode("utf-8", "replace")
            if status < 300:
                return Outcome("delivered", status=status, retries=attempt)
            if status not in RETRYABLE:
                return Outcome("failed", detail, status, retries=attempt)
        return Outcome("failed", detail, status, retries=self._attempts - 1)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
