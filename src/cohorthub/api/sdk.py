"""The Braze Web SDK endpoint: `POST /api/v3/data/` (with or without the slash) and its CORS.

The SDK reads a response body only on a 2xx and re-queues its events on anything else, so a
request it must not send again (unknown key, no device, too large, not JSON) is answered
`200 {"error": code, "message": ...}`: the SDK logs "Backend error: …" and drops the batch.
A refused origin, a lock timeout or a server error is not a 2xx, and the SDK retries later.
Preflights are answered for any origin (they carry no key); the POST enforces the workspace's
allowed origins and only then adds `Access-Control-Allow-Origin`.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api import sdk_wire as wire
from cohorthub.api.http import JSONResponse, container, decode_json, in_thread, read_body, write_in_thread
from cohorthub.api.openapi import Operation
from cohorthub.apps import services
from cohorthub.apps.errors import InvalidSdkKey, InvalidSdkRequest, OriginNotAllowed
from cohorthub.apps.model import App
from cohorthub.bootstrap import Container
from cohorthub.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

_HEADER_LIST = re.compile(r"^[A-Za-z0-9_\-, ]{0,1000}$")
_SDK_HEADERS = (
    "content-type, x-requested-with, x-braze-api-key, x-braze-last-req-ms-ago, x-braze-req-attempt, "
    "x-braze-datarequest, x-braze-triggersrequest, x-braze-req-tokens-remaining, x-braze-auth-signature, "
    "x-braze-contentcardsrequest, x-braze-featureflagsrequest, x-braze-request-initiated-by, "
    "braze-sync-retry-count"
)


def _cors(origin: str | None) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}


async def preflight(request: Request) -> Response:
    """`OPTIONS /api/v3/data/`: allow the SDK's method and headers from any page."""
    origin = request.headers.get("origin")
    asked = request.headers.get("access-control-request-headers", "")
    headers = {
        **(_cors(origin) if origin else {"Access-Control-Allow-Origin": "*"}),
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": asked if asked and _HEADER_LIST.match(asked) else _SDK_HEADERS,
        "Access-Control-Max-Age": "86400",
    }
    return Response(status_code=204, headers=headers)


def _refused(code: str, message: str, origin: str | None) -> Response:
    return JSONResponse({"error": code, "message": message}, status_code=200, headers=_cors(origin))


def _authenticate(c: Container, key: object) -> App:
    with c.uow(readonly=True) as uow:
        return services.authenticate_sdk_key(uow=uow, key=key)


def _count(c: Container, app: App, reason: str) -> None:
    with c.uow() as uow:
        services.count_rejected(uow=uow, app=app, reason=reason)


def _record(c: Container, app: App, body: Any, origin: str | None) -> None:
    with c.uow(group=True) as uow:
        allowed = services.allowed_origins(uow=uow, workspace_id=app.workspace_id)
        if origin and allowed and origin.lower() not in allowed:
            raise OriginNotAllowed(f"Origin {origin} is not allowed for this workspace")
        services.record_sdk_data(
            uow=uow,
            app=app,
            body=body,
            listeners=c.identity_listeners,
            dedup_window=c.settings.sdk_dedup_window_seconds,
            now=c.now(),
        )


async def data(request: Request) -> Response:
    """`POST /api/v3/data/`: store what the SDK queued."""
    c = container(request)
    origin = request.headers.get("origin")
    key: object = request.headers.get("x-braze-api-key")
    failure: tuple[str, str] | None = None
    body: Any = None
    try:
        body = decode_json(await read_body(request, c.settings.sdk_max_body_bytes))
    except PayloadTooLarge as exc:
        failure = ("payload_too_large", exc.message)
    except (InvalidInput, UnsupportedMediaType) as exc:  # not JSON (or not decodable), or too deep
        failure = ("invalid_request", exc.message)
    if not key and isinstance(body, dict):
        key = body.get("api_key")
    try:
        app = await in_thread(lambda: _authenticate(c, key))
    except InvalidSdkKey as exc:
        return _refused(exc.code, exc.message, origin)
    try:
        if failure is not None:
            raise InvalidSdkRequest(*failure)
        await write_in_thread(lambda: _record(c, app, body, origin))
    except InvalidSdkRequest as exc:
        code, message = exc.code, exc.message
        await in_thread(lambda: _count(c, app, code))
        return _refused(code, message, origin)
    except OriginNotAllowed:
        await in_thread(lambda: _count(c, app, "origin"))
        raise
    return JSONResponse({}, headers=_cors(origin))


ROUTES: list[BaseRoute] = [
    Route(path, endpoint, methods=[method])
    for path in ("/api/v3/data/", "/api/v3/data")
    for endpoint, method in ((data, "POST"), (preflight, "OPTIONS"))
]

OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        "/api/v3/data/",
        "Braze Web SDK data (sessions, events, purchases, attributes)",
        "sdk",
        request=wire.SdkDataRequest,
        response=wire.SdkDataResponse,
        errors=(403, 423),
        auth="none",
        description=(
            "Authenticated by the app's SDK API key (`X-Braze-Api-Key` or `api_key`). `{}` means stored. "
            "A request the SDK must not retry is answered 200 with `error` (`invalid_api_key`, "
            "`no_device_identifier`, `invalid_request`, `payload_too_large`). Events already stored "
            "within the retry window (same device, session, code, time, user and data) are skipped. "
            "See docs/web-sdk.md."
        ),
    ),
]
