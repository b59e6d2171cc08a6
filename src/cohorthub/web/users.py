"""Users: look one up by external id, alias, device id or e-mail; profile, identifiers, cohorts,
segments (live), recent events and purchases."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api.http import in_thread
from cohorthub.cohorts.services import memberships_of
from cohorthub.identity import services as identity
from cohorthub.segments import services as segments
from cohorthub.web.context import Ctx, page, render

KINDS = ("external_id", "user_alias", "device_id", "email")


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
            results.append({"user": user, "segments": inside})
    return {"results": results}


@page("read")
async def users_page(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/users?by=&q=`."""
    kind = request.query_params.get("by", "external_id")
    query = request.query_params.get("q", "").strip()
    kind = kind if kind in KINDS else "external_id"
    values = await in_thread(lambda: _look_up(ctx, kind, query)) if query else {"results": None}
    return render(ctx, "users.html", title=ctx.gettext("Users"), nav="users", kind=kind, query=query,
                  kinds=KINDS, **values)  # fmt: skip


ROUTES: list[BaseRoute] = [Route("/users", users_page, methods=["GET"])]
