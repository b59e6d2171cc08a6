"""The HTTP adapter of the `Sender` port; the only Currents module that touches the network.

A Currents request is one POST and a short answer, thousands of times a second, so direct
connections use the standard library's HTTP/1.1 client over keep-alive connections (a few
times less CPU per request than a full-featured client). When a proxy is configured for the
URL (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`), or a transport is injected, the
request goes through httpx, which honours it. TLS uses httpx's context (certifi, `SSL_CERT_FILE`).
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
import urllib.request
from urllib.parse import SplitResult, urlsplit

import httpx

from cohorthub.currents.ports import SendResult
from cohorthub.outbound import read_answer, read_httpx_answer

_Key = tuple[str, str, int]
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class HttpSender:
    """POSTs Currents batches over keep-alive connections; thread-safe."""

    def __init__(self, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self._timeout = timeout
        self._client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        self._direct = transport is None
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self._proxies = urllib.request.getproxies()

    def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        """POST `body`; network errors, timeouts and a URL no request can be made to come back as
        status None (a failed attempt, retried as the policy says)."""
        try:
            return self._send(url, headers, body)
        except (ValueError, http.client.InvalidURL, httpx.InvalidURL) as exc:  # UnicodeError is a ValueError
            return SendResult(None, error=f"InvalidURL: {exc}"[:500])

    def _send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        parts = urlsplit(url)
        if not self._direct or self._proxied(parts) or parts.hostname is None or not url.isascii():
            return self._send_httpx(url, headers, body)  # httpx also encodes a non-ASCII host and path
        key = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        start = time.monotonic()
        while True:
            conn, reused = self._checkout(key)
            try:
                if conn.sock is None:
                    conn.connect()
            except OSError as exc:
                conn.close()
                return SendResult(None, error=_describe("Connect", exc))
            try:
                conn.request("POST", target, body=body, headers=headers)
                response = conn.getresponse()
            except _STALE:
                conn.close()
                if reused:  # the server closed an idle keep-alive connection: once more on a new one
                    continue
                return SendResult(None, error="RemoteProtocolError: connection closed without an answer")
            except (OSError, ValueError, http.client.HTTPException) as exc:
                conn.close()
                return SendResult(None, error=_describe("Read", exc))
            data, whole = read_answer(response, start + self._timeout)
            if response.will_close or not whole:
                conn.close()
            else:
                self._checkin(key, conn)
            error = None if 200 <= response.status < 300 else data[:500].decode("utf-8", "replace")
            return SendResult(response.status, retry_after=response.getheader("retry-after"), error=error)

    def close(self) -> None:
        """Close every connection."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
        self._client.close()

    def _checkout(self, key: _Key) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        scheme, host, port = key
        if scheme == "https":
            if self._tls is None:
                self._tls = httpx.create_ssl_context()
            return http.client.HTTPSConnection(host, port, timeout=self._timeout, context=self._tls), False
        return http.client.HTTPConnection(host, port, timeout=self._timeout), False

    def _checkin(self, key: _Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append(conn)

    def _proxied(self, parts: SplitResult) -> bool:
        if not self._proxies:
            return False
        if parts.scheme not in self._proxies and "all" not in self._proxies:
            return False
        # the NO_PROXY read with the proxies, at construction (as the httpx client reads them)
        return not urllib.request.proxy_bypass_environment(parts.netloc, self._proxies)  # type: ignore[attr-defined]

    def _send_httpx(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        deadline = time.monotonic() + self._timeout
        try:
            with self._client.stream("POST", url, content=body, headers=headers) as response:
                data = read_httpx_answer(response, deadline)
        except httpx.HTTPError as exc:
            return SendResult(None, error=f"{type(exc).__name__}: {exc}"[:500])
        error = None if response.is_success else data[:500].decode("utf-8", "replace")
        return SendResult(response.status_code, retry_after=response.headers.get("retry-after"), error=error)


def _describe(phase: str, exc: BaseException) -> str:
    """`ConnectError: …`, `ReadTimeout: …` (the names httpx uses), or the exception's own name."""
    if isinstance(exc, TimeoutError):
        name = f"{phase}Timeout"
    elif phase == "Connect":
        name = "ConnectError"
    else:
        name = type(exc).__name__
    return f"{name}: {exc}"[:500]
