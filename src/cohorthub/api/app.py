"""The ASGI application: every route module's routes, the error mapping, OpenAPI."""

from __future__ import annotations

from types import ModuleType

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api import (
    cohort_import,
    cohorts,
    currents,
    messaging,
    programs,
    sdk,
    segments,
    tracking,
    users,
    users_import,
)
from cohorthub.api.errors import handle_cohorthub_error, handle_http_exception, handle_unexpected
from cohorthub.api.http import JSONResponse, container, in_thread
from cohorthub.api.middleware import RequestContext
from cohorthub.api.openapi import Operation, build_openapi
from cohorthub.api.params import StorableUrl
from cohorthub.bootstrap import Container
from cohorthub.errors import CohorthubError
from cohorthub.web.app import dashboard

#: Each module exposes ROUTES (Starlette routes) and OPERATIONS (their OpenAPI entries).
ROUTE_MODULES: list[ModuleType] = [
    cohort_import, cohorts, users, users_import, segments, currents, sdk, messaging, programs, tracking,
]


def operations() -> list[Operation]:
    """Every documented operation, in module order."""
    return [op for module in ROUTE_MODULES for op in module.OPERATIONS]


async def openapi(request: Request) -> Response:
    """`GET /openapi.json` (built once per app, in a worker thread: it is CPU work)."""
    state = request.app.state
    if getattr(state, "openapi", None) is None:
        url = container(request).settings.public_url
        state.openapi = await in_thread(lambda: build_openapi(operations(), server_url=url))
    return JSONResponse(state.openapi)


async def health(_request: Request) -> Response:
    """`GET /healthz`: the process answers."""
    return JSONResponse({"status": "ok"})


def create_app(c: Container) -> Starlette:
    """Build the app around an already wired container."""
    routes: list[BaseRoute] = [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
    ]
    for module in ROUTE_MODULES:
        routes.extend(module.ROUTES)
    routes.append(dashboard())
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestContext, log_requests=c.settings.request_log),
            Middleware(StorableUrl),
        ],
        exception_handlers={
            CohorthubError: handle_cohorthub_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
    )
    app.state.container = c
    return app
