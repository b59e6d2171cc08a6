"""The HTTP adapter of the `Sender` port (httpx); the only Currents module that touches the network."""

from __future__ import annotations

import httpx

from cohorthub.currents.ports import SendResult


class HttpSender:
    """POSTs Currents batches over one keep-alive connection pool."""

    def __init__(self, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self._client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        """POST `body`; network errors and timeouts come back as status None."""
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return SendResult(None, error=f"{type(exc).__name__}: {exc}"[:500])
        error = None if response.is_success else response.text[:500]
        return SendResult(response.status_code, retry_after=response.headers.get("retry-after"), error=error)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
