"""Currents: connectors (Heap export, custom HTTP) with event selection, token, test send, health, replay."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api.http import in_thread
from cohorthub.currents import services
from cohorthub.currents.errors import InvalidConnector
from cohorthub.currents.model import DEFAULT_EVENTS, Connector, ConnectorStats
from cohorthub.currents.ports import SendResult
from cohorthub.currents.transport import HttpSender
from cohorthub.segments.model import parse_time
from cohorthub.web.context import Ctx, PageNotFound, page, redirect, render

TEST_TIMEOUT = 10.0


def _page(ctx: Ctx, *, notice: str = "") -> Response:
    with ctx.c.uow(readonly=True) as uow:
        connectors = services.list_connectors(uow=uow, workspace_id=ctx.workspace_id)
        rows: list[tuple[Connector, ConnectorStats]] = [
            (k, services.connector_stats(uow=uow, connector_id=k.id, now=ctx.c.now())) for k in connectors
        ]
    return render(ctx, "currents.html", title="Currents", nav="currents", rows=rows, notice=notice,
                  default_events=DEFAULT_EVENTS)  # fmt: skip


@page("read")
async def currents_page(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/currents`: every connector with its health."""
    return await in_thread(lambda: _page(ctx))


@page("write")
async def create(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/currents`: a new connector."""

    def run() -> None:
        with ctx.c.uow() as uow:
            services.create_connector(
                uow=uow, workspace_id=ctx.workspace_id, kind=ctx.field("kind"), url=ctx.field("url"),
                token=ctx.field("token") or None, events=ctx.field("events") or DEFAULT_EVENTS,
                now=ctx.c.now(),
            )  # fmt: skip

    await in_thread(run)
    return redirect("/currents")


def _since(text: str) -> float | None:
    try:
        return parse_time(text) if text else None
    except ValueError:
        raise InvalidConnector(f"Not a date: {text!r}") from None


def _test_send(ctx: Ctx, connector_id: str) -> SendResult:
    sender = HttpSender(timeout=TEST_TIMEOUT)
    try:
        with ctx.c.uow(readonly=True) as uow:
            return services.send_test_event(uow=uow, sender=sender, connector_id=connector_id,
                                            workspace_id=ctx.workspace_id, now=ctx.c.now())  # fmt: skip
    finally:
        sender.close()


@page("write")
async def action(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/currents/{id}/{action}`: test, pause, resume, replay, delete."""
    connector_id, name = request.path_params["connector_id"], request.path_params["action"]

    def run() -> str:
        if name == "test":
            result = _test_send(ctx, connector_id)
            if result.status is not None and 200 <= result.status < 300:
                return ctx.gettext("Test event delivered (HTTP %(status)s).") % {"status": result.status}
            return ctx.gettext("Test event not delivered: %(error)s") % {
                "error": result.error or f"HTTP {result.status}"
            }
        with ctx.c.uow() as uow:
            services.get_connector(uow=uow, connector_id=connector_id, workspace_id=ctx.workspace_id)
            if name in ("pause", "resume"):
                services.set_paused(uow=uow, connector_id=connector_id, paused=name == "pause")
            elif name == "delete":
                services.delete_connector(uow=uow, connector_id=connector_id)
            elif name == "replay":
                count = services.replay_events(
                    uow=uow, connector_id=connector_id, since=_since(ctx.field("since")),
                    dead_letters=bool(ctx.field("dead_letters")), now=ctx.c.now(),
                )  # fmt: skip
                return ctx.gettext("%(count)s events queued again.") % {"count": ctx.fmt.number(count)}
            else:
                raise PageNotFound(f"No Currents action {name}")
        return ctx.gettext("Done.")

    notice = await in_thread(run)
    return await in_thread(lambda: _page(ctx, notice=notice))


ROUTES: list[BaseRoute] = [
    Route("/currents", currents_page, methods=["GET"]),
    Route("/currents", create, methods=["POST"]),
    Route("/currents/{connector_id}/{action}", action, methods=["POST"]),
]
