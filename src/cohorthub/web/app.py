"""The dashboard's routes under `/dashboard`, its static files, and the home redirect."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from cohorthub.web import auth, campaigns, canvases, currents, partners, segments, settings, users
from cohorthub.web.context import PREFIX, Ctx, page, redirect

STATIC = Path(__file__).parent / "static"


@page("read")
async def home(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/`: start at Technology Partners."""
    return redirect("/partners")


def dashboard() -> Mount:
    """The dashboard, to mount in the ASGI app."""
    routes: list[BaseRoute] = [
        Route("/", home, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="dashboard-static"),
    ]
    for module in (auth, partners, segments, canvases, campaigns, currents, users, settings):
        routes.extend(module.ROUTES)
    return Mount(PREFIX, routes=routes)
