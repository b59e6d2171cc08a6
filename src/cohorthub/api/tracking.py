"""Tracking links (signed, no key): `/t/o/…` open pixel, `/t/c/…` click redirect, `/t/u/…` unsubscribe
(GET shows a confirmation page, POST unsubscribes: RFC 8058 one-click). A bad signature is a 404."""

from __future__ import annotations

import base64
import contextlib
import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from cohorthub.api import params
from cohorthub.api.http import container, in_thread
from cohorthub.api.openapi import Operation
from cohorthub.messaging import reactions
from cohorthub.messaging.reactions import InvalidLink
from cohorthub.runtimes import tracker_for

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


async def _open(request: Request) -> Response:
    c, (row_id, sig) = container(request), _link(request)

    def run() -> None:
        tracker = tracker_for(c)  # before the transaction: it may write the secret itself
        with c.uow() as uow:
            reactions.record_open(
                uow=uow,
                tracker=tracker,
                row_id=row_id,
                signature=sig.removesuffix(".gif"),
                user_agent=request.headers.get("user-agent"),
                now=c.now(),
            )

    with contextlib.suppress(InvalidLink):  # a pixel always answers with the image
        await in_thread(run)
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


async def _click(request: Request) -> Response:
    c, (row_id, sig) = container(request), _link(request)
    url = request.query_params.get("u", "")

    def run() -> str:
        tracker = tracker_for(c)  # before the transaction: it may write the secret itself
        with c.uow() as uow:
            return reactions.record_click(
                uow=uow,
                tracker=tracker,
                row_id=row_id,
                signature=sig,
                url=url,
                user_agent=request.headers.get("user-agent"),
                now=c.now(),
            )

    return RedirectResponse(await in_thread(run), status_code=302)


async def _unsubscribe(request: Request) -> Response:
    c, (row_id, sig) = container(request), _link(request)
    if request.method == "GET":

        def check() -> None:
            tracker = tracker_for(c)
            with c.uow(readonly=True) as uow:
                reactions.check_unsubscribe(uow=uow, tracker=tracker, row_id=row_id, signature=sig)

        await in_thread(check)
        action = html.escape(str(request.url.path))
        return HTMLResponse(
            '<!doctype html><title>Unsubscribe</title><form method=post action="' + action + '">'
            "<p>Stop receiving these e-mails?</p><button type=submit>Unsubscribe</button></form>"
        )

    def run() -> None:
        tracker = tracker_for(c)  # before the transaction: it may write the secret itself
        with c.uow() as uow:
            reactions.unsubscribe(uow=uow, tracker=tracker, row_id=row_id, signature=sig, now=c.now())

    await in_thread(run)
    return HTMLResponse("<!doctype html><title>Unsubscribed</title><p>You are unsubscribed.</p>")


def _link(request: Request) -> tuple[int, str]:
    raw = request.path_params["row"]
    if not params.is_digits(raw, max_digits=18):
        raise InvalidLink("Unknown link")
    return int(raw), request.path_params["sig"]


ROUTES: list[BaseRoute] = [
    Route("/t/o/{row}/{sig}", _open, methods=["GET"]),
    Route("/t/c/{row}/{sig}", _click, methods=["GET"]),
    Route("/t/u/{row}/{sig}", _unsubscribe, methods=["GET", "POST"]),
]

_LINK = {"row": "The message's ledger row", "sig": "The link's signature"}
OPERATIONS: list[Operation] = [
    Operation(
        "GET",
        "/t/o/{row}/{sig}",
        "Open pixel of an e-mail (records users.messages.email.Open)",
        "tracking",
        errors=(400, 404),
        auth="none",
        path_params=_LINK,
        media={"image/gif": {"schema": {"type": "string", "format": "binary"}}},
    ),
    Operation(
        "GET",
        "/t/c/{row}/{sig}",
        "Tracked link of an e-mail: records the click and redirects to the link",
        "tracking",
        errors=(400, 404),
        auth="none",
        path_params=_LINK,
        query=(("u", "the link's target, as signed"),),
        status=302,
    ),
    Operation(
        "GET",
        "/t/u/{row}/{sig}",
        "Unsubscribe page of an e-mail (a form that POSTs to the same address)",
        "tracking",
        errors=(400, 404),
        auth="none",
        path_params=_LINK,
        media={"text/html": {"schema": {"type": "string"}}},
    ),
    Operation(
        "POST",
        "/t/u/{row}/{sig}",
        "Unsubscribe the recipient (RFC 8058 one-click)",
        "tracking",
        errors=(400, 404),
        auth="none",
        path_params=_LINK,
        media={"text/html": {"schema": {"type": "string"}}},
    ),
]
