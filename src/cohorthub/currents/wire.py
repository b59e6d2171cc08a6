"""The Custom HTTP request: headers and a body spliced from stored JSON bytes (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import parsedate_to_datetime

from cohorthub.config import Secret

CURRENTS_VERSION = "1"
_OPEN = b'{"events":['
_CLOSE = b"]}"


def batch_body(payloads: Sequence[bytes]) -> bytes:
    """`{"events":[…]}` from already encoded events, without decoding them."""
    return b"".join((_OPEN, b",".join(payloads), _CLOSE))


def request_headers(token: Secret | None) -> dict[str, str]:
    """The headers of every Currents request."""
    headers = {"Content-Type": "application/json", "Braze-Currents-Version": CURRENTS_VERSION}
    if token is not None:
        headers["Authorization"] = f"Bearer {token.reveal()}"
    return headers


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - now)
