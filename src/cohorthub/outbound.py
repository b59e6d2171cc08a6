"""Reading the answers of the HTTP endpoints the product calls (Currents connectors, webhooks).

Only the status counts, and the start of the body as an error's text: at most `ANSWER_LIMIT`
bytes of a body are read, for at most until a deadline. An endpoint that streams without end, or
drips its answer, costs a closed connection, not the process's memory or a sender held forever.
"""

from __future__ import annotations

import http.client
import time

import httpx

ANSWER_LIMIT = 64 * 1024


def read_answer(response: http.client.HTTPResponse, deadline: float) -> tuple[bytes, bool]:
    """The body's first `ANSWER_LIMIT` bytes, and whether that was all of it (the connection can
    then be used again); a read that fails or passes `deadline` keeps what came."""
    data = bytearray()
    try:
        while len(data) <= ANSWER_LIMIT and time.monotonic() < deadline:
            chunk = response.read1(ANSWER_LIMIT + 1 - len(data))
            if not chunk:  # all of it; a last read(), of nothing, marks the answer finished
                response.read()
                return bytes(data), response.isclosed()
            data += chunk
    except (OSError, http.client.HTTPException):
        pass
    return bytes(data[:ANSWER_LIMIT]), False


def read_httpx_answer(response: httpx.Response, deadline: float) -> bytes:
    """As `read_answer`, for a streamed httpx response (left unread, it is closed, not pooled)."""
    data = bytearray()
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > ANSWER_LIMIT or time.monotonic() >= deadline:
                break
    except httpx.HTTPError:
        pass
    return bytes(data[:ANSWER_LIMIT])
