"""Map the error tree to HTTP responses by class, in one place."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from cohorthub.api.http import JSONResponse
from cohorthub.errors import CohorthubError, RateLimited, ResourceLocked

log = logging.getLogger("cohorthub.api")


def error_response(exc: CohorthubError) -> Response:
    """`{"message": ..., "errors": [...]}` with the class's status and any Retry-After."""
    body: dict[str, object] = {"message": exc.message}
    if exc.errors:
        body["errors"] = exc.errors
    headers = {}
    if isinstance(exc, RateLimited | ResourceLocked):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def handle_cohorthub_error(_request: Request, exc: Exception) -> Response:
    """Exception handler for every `CohorthubError`."""
    assert isinstance(exc, CohorthubError)
    return error_response(exc)


async def handle_http_exception(_request: Request, exc: Exception) -> Response:
    """404/405 and friends in the same JSON shape."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"message": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def handle_unexpected(_request: Request, exc: Exception) -> Response:
    """A bug: log it, answer 500 without internals."""
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse({"message": "Internal server error"}, status_code=500)
