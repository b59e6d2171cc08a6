"""Map the error tree to HTTP responses by class, in one place."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from cohorthub.api.http import JSONResponse
from cohorthub.api.middleware import REQUEST_ID_HEADER, request_id_of
from cohorthub.errors import CohorthubError, RateLimited, ResourceLocked, UnsupportedEncoding

log = logging.getLogger("cohorthub.api")


def error_response(exc: CohorthubError, request_id: str | None = None) -> Response:
    """`{"message": ..., "errors": [...], "request_id": ...}` with the class's status and any Retry-After."""
    body: dict[str, object] = {"message": exc.message}
    if exc.errors:
        body["errors"] = exc.errors
    if request_id:
        body["request_id"] = request_id
    headers = {}
    if isinstance(exc, RateLimited | ResourceLocked):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, UnsupportedEncoding):  # RFC 9110, section 12.5.3
        headers["Accept-Encoding"] = exc.accepted
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def handle_cohorthub_error(request: Request, exc: Exception) -> Response:
    """Exception handler for every `CohorthubError`."""
    assert isinstance(exc, CohorthubError)
    return error_response(exc, request_id_of(request))


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """404/405 and friends in the same JSON shape."""
    assert isinstance(exc, HTTPException)
    body: dict[str, object] = {"message": exc.detail}
    if rid := request_id_of(request):
        body["request_id"] = rid
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """A bug: log it with the request's method, path and id; answer 500 without internals."""
    rid = request_id_of(request) or "-"
    log.error("unhandled error in %s %s rid=%s", request.method, request.url.path, rid, exc_info=exc)
    return JSONResponse(
        {"message": "Internal server error", "request_id": rid},
        status_code=500,
        headers={REQUEST_ID_HEADER: rid},
    )
