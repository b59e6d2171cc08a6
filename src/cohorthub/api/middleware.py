"""ASGI middleware of the HTTP edge: repeated slashes collapsed, a request id, one log line per request.

The log line holds method, path (never the query string or body, where keys travel), status,
duration and request id. The request id comes from a well-formed `X-Request-Id` header or is
made here; it is returned in the `X-Request-Id` response header and in every error body.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("cohorthub.access")
REQUEST_ID_HEADER = "X-Request-Id"
_SLASHES = re.compile(r"/{2,}")
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def collapse_slashes(path: str) -> str:
    """`//partners//heap/cohorts` → `/partners/heap/cohorts` (clients join `https://host/` + `/path`)."""
    return _SLASHES.sub("/", path)


def request_id_of(request: Request) -> str | None:
    """The request id the middleware gave this request."""
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _CLIENT_ID.fullmatch(text):
                return text
    return uuid.uuid4().hex


class RequestContext:
    """Collapse repeated slashes, give each request an id, and log it when it ends."""

    def __init__(self, app: ASGIApp, *, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid  # before any copy: the 500 handler reads it
        if "//" in scope["path"]:
            raw = scope.get("raw_path") or scope["path"].encode()
            scope = dict(scope, path=collapse_slashes(scope["path"]), raw_path=re.sub(rb"/{2,}", b"/", raw))
        outcome: dict[str, Any] = {"status": 500}
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.log_requests:
                millis = (time.perf_counter() - started) * 1000
                log.info(
                    "%s %s %d %.1fms rid=%s", scope["method"], scope["path"], outcome["status"], millis, rid
                )
