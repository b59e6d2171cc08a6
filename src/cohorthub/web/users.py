"""Users: look one up by external id, alias, device id or e-mail; profile, identifiers, cohorts,
segments (live), recent events and purchases, and the messages they were sent (from the send ledger)."""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api.http import in_thread
from cohorthub.api.params import is_digits
from cohorthub.cohorts.services import memberships_of
from cohorthub.errors import InvalidInput
from cohorthub.identity import services as identity
from cohorthub.messaging.history import MessagePage, user_messages
from cohorthub.segments import services as segments
from cohorthub.web.context import Ctx, page, render

KINDS = ("external_id", "user_alias", "device_id", "email")
RECENT = 10  # messages shown with a look-up; the messages page shows PAGE at a time
PAGE = 50
MAX_ROW_ID = 2**63 - 1


def _body(kind: str, query: str) -> dict[str, Any]:
    if kind == "user_alias":
        label, _, name = query.partition(":")
        return {"user_aliases": [{"alias_label": label, "alias_name": name}]}
    if kind == "device_id":
        return {"device_id": query}
    if kind == "email":
        return {"email_address": query}
    return {"external_ids": [query]}


def _look_up(ctx: Ctx, kind: str, query: str) -> dict[str, Any]:
    c, workspace_id = ctx.c, ctx.workspace_id
    with c.uow(readonly=True) as uow:

        def memberships(nums: list[int]) -> dict[int, list[dict[str, str]]]:
            return memberships_of(uow=uow, cache=c.membership, workspace_id=workspace_id, user_nums=nums)

        found = identity.export_users(uow=uow, workspace_id=workspace_id, body=_body(kind, query),
                                      memberships=memberships).users  # fmt: skip
        results = []
        for user in found[:10]:
            inside = []
            for record in segments.list_segments(uow=uow, workspace_id=workspace_id, include_archived=False):
                _, members = segments.evaluate_segment(uow=uow, indexes=c.segments, membership=c.membership,
                                                       workspace_id=workspace_id, segment_id=record.id,
                                                       now=c.now())  # fmt: skip
                _, rows = segments.find_member(uow=uow, workspace_id=workspace_id, members=members,
                                               external_id=user.get("external_id") or "")  # fmt: skip
                if rows:
                    inside.append(record)
            sent = user_messages(uow=uow, workspace_id=workspace_id, braze_id=user["braze_id"], limit=RECENT)
            results.append({"user": user, "segments": inside, "sent": sent})
    return {"results": results}


@page("read")
async def users_page(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/users?by=&q=`."""
    kind = request.query_params.get("by", "external_id")
    query = request.query_params.get("q", "").strip()
    kind = kind if kind in KINDS else "external_id"
    values = await in_thread(lambda: _look_up(ctx, kind, query)) if query else {"results": None}
    return render(ctx, "users.html", title=ctx.gettext("Users"), nav="users", kind=kind, query=query,
                  kinds=KINDS, cursor_text=cursor_text, **values)  # fmt: skip


def cursor_text(older: tuple[float, int] | None) -> str:
    """A page cursor as it goes in a link."""
    return f"{older[0]!r}:{older[1]}" if older else ""


def _cursor(text: str) -> tuple[float, int] | None:
    if not text:
        return None
    at, _, row_id = text.partition(":")
    try:
        moment = float(at)
    except ValueError:
        moment = math.nan
    # A ledger id is a signed 64-bit integer: a larger one is no cursor (and SQLite cannot compare it).
    if not math.isfinite(moment) or not is_digits(row_id) or int(row_id) > MAX_ROW_ID:
        raise InvalidInput(f"Not a page cursor: {text!r}")
    return moment, int(row_id)


@page("read")
async def messages_page(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/users/{braze_id}/messages?before=`: every message sent to a user, newest first."""
    braze_id = request.path_params["braze_id"]
    before = _cursor(request.query_params.get("before", ""))

    def run() -> MessagePage:
        with ctx.c.uow(readonly=True) as uow:
            return user_messages(uow=uow, workspace_id=ctx.workspace_id, braze_id=braze_id, before=before,
                                 limit=PAGE)  # fmt: skip

    sent = await in_thread(run)
    return render(ctx, "user_messages.html", title=ctx.gettext("Messages"), nav="users", braze_id=braze_id,
                  sent=sent, cursor_text=cursor_text)  # fmt: skip


ROUTES: list[BaseRoute] = [
    Route("/users", users_page, methods=["GET"]),
    Route("/users/{braze_id}/messages", messages_page, methods=["GET"]),
]
