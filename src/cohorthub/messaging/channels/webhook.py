"""The webhook transport: httpx, retries with backoff on 5xx, 429 and network errors; at most the
first 64 KiB of an answer is read (its start is the failure's `raw_response`).

Each attempt ends at its deadline (the timeout after it starts), whatever the server does: httpx's
timeouts bound each read or write alone, so a server that drips its head a line at a time, never
idle for a whole timeout, would otherwise hold the sending thread (every campaign's sends) for hours.
"""

from __future__ import annotations

import math
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

from cohorthub.messaging.ports import Outcome, OutgoingWebhook
from cohorthub.outbound import read_httpx_answer

RETRYABLE = {429, 500, 502, 503, 504}


class _Deadline(threading.local):
    """When the current thread's attempt ends (a monotonic time)."""

    at = math.inf

    def left(self, timeout: float | None, error: type[Exception]) -> float:
        """The time an operation may take: its own timeout, cut at the deadline; `error` once passed."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise error("the attempt's deadline passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the deadline of the attempt using it."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream, self._deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        left = self._deadline.left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, left), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync sockets, each bounded by the deadline of the attempt using it."""

    def __init__(self, deadline: _Deadline) -> None:
        self._backend, self._deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline.left(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, left, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's direct transport over `_DeadlineBackend`."""

    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_DeadlineBackend(deadline)
        )


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
        self._deadline = _Deadline()
        self._client = httpx.Client(
            timeout=timeout,
            headers={"User-Agent": "cohorthub-webhooks"},
            # a mount, not `transport=`, so that HTTP(S)_PROXY still routes through a proxy as before
            mounts={"all://": _DeadlineTransport(self._deadline)},
        )
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
            deadline = self._deadline.at = time.monotonic() + self._timeout
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
