"""Segments: the list with exact sizes, the builder with a live size, members, explain, CSV, history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from pyroaring import BitMap
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cohorthub.api.http import in_thread, read_body
from cohorthub.api.segments import member_csv
from cohorthub.cohorts.services import list_cohorts
from cohorthub.partners.model import REGISTRY
from cohorthub.partners.services import integration_states
from cohorthub.segments import services
from cohorthub.segments.errors import InvalidSegment
from cohorthub.segments.model import IDENTITY_FIELDS, OPERATORS, STANDARD_ATTRIBUTES, SUBSCRIPTION_STATES
from cohorthub.segments.ports import SegmentRecord
from cohorthub.web.builder_text import builder_text
from cohorthub.web.charts import line_chart
from cohorthub.web.context import PREFIX, Ctx, page, redirect, render

if TYPE_CHECKING:
    from cohorthub.store.uow import SqlUnitOfWork

HISTORY_DAYS = 30
MEMBERS_SHOWN = 50


def _size(ctx: Ctx, uow: SqlUnitOfWork, segment_id: str) -> tuple[SegmentRecord, BitMap]:
    return services.evaluate_segment(
        uow=uow, indexes=ctx.c.segments, membership=ctx.c.membership,
        workspace_id=ctx.workspace_id, segment_id=segment_id, now=ctx.c.now(),
    )  # fmt: skip


@page("read")
async def segment_list(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/segments`: every segment with its exact size now."""

    def run() -> list[tuple[SegmentRecord, int]]:
        with ctx.c.uow(readonly=True) as uow:
            records = services.list_segments(uow=uow, workspace_id=ctx.workspace_id, include_archived=False)
            return [(r, len(_size(ctx, uow, r.id)[1])) for r in records]

    rows = await in_thread(run)
    return render(ctx, "segments.html", title=ctx.gettext("Segments"), nav="segments", rows=rows)


def _builder_data(ctx: Ctx, uow: SqlUnitOfWork) -> dict[str, Any]:
    states = integration_states(uow=uow, workspace_id=ctx.workspace_id)
    cohorts = list_cohorts(uow=uow, workspace_id=ctx.workspace_id, partner=None)
    partners = []
    for name, partner in REGISTRY.items():
        own = [{"id": c.cohort_id, "name": c.name, "size": c.size} for c in cohorts if c.partner == name]
        if own or states[name] is not None:
            filter_name = ctx.gettext("%(partner)s Cohorts") % {"partner": partner.display_name}
            partners.append({"name": name, "filter_name": filter_name, "cohorts": own})
    segments = services.list_segments(uow=uow, workspace_id=ctx.workspace_id, include_archived=False)
    return {
        "partners": partners,
        "segments": [{"id": s.id, "name": s.name} for s in segments],
        "standard": STANDARD_ATTRIBUTES,
        "operators": OPERATORS,
        "identity_fields": IDENTITY_FIELDS,
        "subscription_states": SUBSCRIPTION_STATES,
        "text": builder_text(ctx.gettext),
    }


@page("read")
async def new_segment(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/segments/new`: an empty builder."""

    def run() -> dict[str, Any]:
        with ctx.c.uow(readonly=True) as uow:
            return _builder_data(ctx, uow)

    data = await in_thread(run)
    return render(ctx, "segment.html", title=ctx.gettext("New segment"), nav="segments", record=None,
                  size=None, data=data, initial={"and": []}, history=None, members=[])  # fmt: skip


@page("read")
async def segment_page(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/segments/{id}`: builder, exact size, size history, members, explain, export."""
    segment_id = request.path_params["segment_id"]

    def run() -> dict[str, Any]:
        with ctx.c.uow(readonly=True) as uow:
            record, members = _size(ctx, uow, segment_id)
            since = ctx.c.now() - HISTORY_DAYS * 86400
            history = services.size_history(uow=uow, workspace_id=ctx.workspace_id, segment_id=segment_id,
                                            since=since)  # fmt: skip
            rows, _ = services.page_members(uow=uow, members=members, after=-1, limit=MEMBERS_SHOWN)
            return {"record": record, "size": len(members), "data": _builder_data(ctx, uow),
                    "initial": record.filter, "history": line_chart(history), "members": rows}  # fmt: skip

    values = await in_thread(run)
    record = values["record"]
    return render(ctx, "segment.html", title=record.name, nav="segments", **values)


async def _json(request: Request, ctx: Ctx) -> dict[str, Any]:
    if ctx.form is not None:  # a form post: its body was read as the form by the CSRF check
        raise InvalidSegment("body", "must be JSON (Content-Type: application/json)")
    try:
        body = msgspec.json.decode(await read_body(request, ctx.c.settings.max_body_bytes))
    except msgspec.DecodeError as exc:
        raise InvalidSegment("body", "must be JSON") from exc
    if not isinstance(body, dict):
        raise InvalidSegment("body", "must be a JSON object")
    return body


@page("read")
async def preview(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/segments/preview`: the exact size of an unsaved filter (the builder's live size)."""
    body = await _json(request, ctx)

    def run() -> int:
        with ctx.c.uow(readonly=True) as uow:
            raw = body.get("filter")
            services.check_filter(uow=uow, workspace_id=ctx.workspace_id, raw=raw)
            return len(services.evaluate_filter(
                uow=uow, indexes=ctx.c.segments, membership=ctx.c.membership,
                workspace_id=ctx.workspace_id, raw=raw, now=ctx.c.now(),
            ))  # fmt: skip

    size = await in_thread(run)
    return JSONResponse({"size": size, "text": ctx.fmt.number(size)})


@page("write")
async def save(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/segments/save`: create or replace a segment from the builder."""
    body = await _json(request, ctx)
    segment_id = body.get("id") or None
    draft = services.SegmentDraft(name=body.get("name"), filter=body.get("filter"),
                                  description=body.get("description") or "")  # fmt: skip

    def run() -> SegmentRecord:
        with ctx.c.uow() as uow:
            if segment_id is None:
                return services.create_segment(uow=uow, workspace_id=ctx.workspace_id, draft=draft,
                                               now=ctx.c.now())  # fmt: skip
            return services.update_segment(uow=uow, workspace_id=ctx.workspace_id, segment_id=str(segment_id),
                                           draft=draft, now=ctx.c.now())  # fmt: skip

    record = await in_thread(run)
    return JSONResponse({"id": record.id, "url": f"{PREFIX}/segments/{record.id}"})


@page("write")
async def archive(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/segments/{id}/archive`."""
    segment_id = request.path_params["segment_id"]

    def run() -> None:
        with ctx.c.uow() as uow:
            services.set_archived(uow=uow, workspace_id=ctx.workspace_id, segment_id=segment_id,
                                  archived=True, now=ctx.c.now())  # fmt: skip

    await in_thread(run)
    return redirect("/segments")


@page("read")
async def members(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/segments/{id}/members?q=`: is this user in the segment (a fragment)."""
    segment_id, query = request.path_params["segment_id"], request.query_params.get("q", "").strip()

    def run() -> tuple[list[tuple[int, str, str | None]], bool]:
        with ctx.c.uow(readonly=True) as uow:
            _, found = _size(ctx, uow, segment_id)
            if not query:
                return services.page_members(uow=uow, members=found, after=-1, limit=MEMBERS_SHOWN)[0], True
            known, rows = services.find_member(uow=uow, workspace_id=ctx.workspace_id, members=found,
                                               external_id=query)  # fmt: skip
            return rows, known

    rows, known = await in_thread(run)
    return render(ctx, "segment_members.html", members=rows, query=query, known=known)


@page("read")
async def explain(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/segments/{id}/explain?external_id=`: why a user is in or out (a fragment)."""
    segment_id, external_id = request.path_params["segment_id"], request.query_params.get("external_id", "")

    def run() -> dict[str, Any]:
        with ctx.c.uow(readonly=True) as uow:
            return services.explain_user(uow=uow, membership=ctx.c.membership, workspace_id=ctx.workspace_id,
                                         segment_id=segment_id, external_id=external_id.strip(),
                                         now=ctx.c.now())  # fmt: skip

    tree = await in_thread(run)
    return render(ctx, "segment_explain.html", tree=tree, external_id=external_id)


#: What makes a spreadsheet read a cell as a formula (Excel, LibreOffice, Google Sheets).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: str) -> str:
    """`value` as a spreadsheet shows it as text: a leading apostrophe before a formula's first character.

    An external id comes from the customer's apps (a browser's Web SDK sets it): in a file meant to be
    opened in a spreadsheet, `=HYPERLINK(…)` must stay text (OWASP's CSV injection advice).
    """
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


@page("read")
async def export(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/segments/{id}/export.csv`: every member as CSV, streamed, safe to open in a spreadsheet
    (`spreadsheet_text`; the API's `?format=csv` keeps every value as stored)."""
    segment_id = request.path_params["segment_id"]

    def run() -> BitMap:
        with ctx.c.uow(readonly=True) as uow:
            return _size(ctx, uow, segment_id)[1]

    found = await in_thread(run)
    headers = {"content-disposition": f'attachment; filename="segment-{segment_id}.csv"'}
    rows = member_csv(ctx.c, found, spreadsheet_text)
    return StreamingResponse(rows, media_type="text/csv", headers=headers)


ROUTES: list[BaseRoute] = [
    Route("/segments", segment_list, methods=["GET"]),
    Route("/segments/new", new_segment, methods=["GET"]),
    Route("/segments/preview", preview, methods=["POST"]),
    Route("/segments/save", save, methods=["POST"]),
    Route("/segments/{segment_id}", segment_page, methods=["GET"]),
    Route("/segments/{segment_id}/archive", archive, methods=["POST"]),
    Route("/segments/{segment_id}/members", members, methods=["GET"]),
    Route("/segments/{segment_id}/explain", explain, methods=["GET"]),
    Route("/segments/{segment_id}/export.csv", export, methods=["GET"]),
]
