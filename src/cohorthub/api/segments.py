"""The segments API: define (Braze-compatible list/details shapes), size, members, explain, changes.

Every endpoint needs a REST API key (`Authorization: Bearer KEY`) with its permission:
`segments.write` (create, replace, archive), `segments.list`, `segments.details`,
`segments.read` (size, members, explain, changes, history).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import msgspec
from pyroaring import BitMap
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cohorthub.api.cohorts import iso
from cohorthub.api.http import JSONResponse, api_key, container, decode_as, in_thread, read_json
from cohorthub.api.openapi import Operation
from cohorthub.bootstrap import Container
from cohorthub.segments import services
from cohorthub.segments.errors import InvalidSegment
from cohorthub.segments.model import parse_time
from cohorthub.segments.ports import SegmentRecord
from cohorthub.store.uow import SqlUnitOfWork
from cohorthub.workspaces.services import authenticate_rest_key

T = TypeVar("T")
PAGE = 100
UNSET: Any = msgspec.UNSET


class SegmentIn(msgspec.Struct, forbid_unknown_fields=True):
    """A segment definition; `filter` is the JSON filter tree (docs/segments.md)."""

    name: Any
    filter: Any
    description: Any = ""
    tags: Any = msgspec.field(default_factory=list)
    filter_version: Any = 1
    analytics_tracking_enabled: Any = False
    api_key: str | None = None


class SegmentSummary(msgspec.Struct):
    """One row of `/segments/list`."""

    id: str
    name: str
    analytics_tracking_enabled: bool
    tags: list[str]


class SegmentList(msgspec.Struct):
    """`GET /segments/list`."""

    segments: list[SegmentSummary]
    message: str = "success"


class SegmentDetails(msgspec.Struct):
    """`GET /segments/details` (Braze's fields plus `id`, `filter`, `filter_version`, `archived`)."""

    message: str
    id: str
    created_at: str
    updated_at: str
    name: str
    description: str
    text_description: str
    tags: list[str]
    teams: list[str]
    filter: dict[str, Any]
    filter_version: int
    archived: bool


class SegmentSize(msgspec.Struct):
    """The exact size now."""

    message: str
    segment_id: str
    size: int
    computed_at: str


class Member(msgspec.Struct):
    """A member of the segment."""

    braze_id: str
    external_id: str | None


class MembersPage(msgspec.Struct):
    """A page of members; pass `next_cursor` as `cursor` for the next page (null at the end)."""

    message: str
    members: list[Member]
    next_cursor: str | None


class SegmentChanges(msgspec.Struct):
    """Who entered or left since `since` (compared with the newest snapshot at or before it)."""

    message: str
    since: str
    compared_with: str | None
    entered_count: int
    left_count: int
    entered: list[Member]
    left: list[Member]


def _auth(uow: SqlUnitOfWork, key: str | None, permission: str) -> str:
    return authenticate_rest_key(uow=uow, key=key, permission=permission).workspace_id


def _read(request: Request, permission: str, work: Callable[[SqlUnitOfWork, str], T]) -> Callable[[], T]:
    c, key = container(request), api_key(request, None)

    def run() -> T:
        with c.uow(readonly=True) as uow:
            return work(uow, _auth(uow, key, permission))

    return run


def _details(c: Container, uow: SqlUnitOfWork, record: SegmentRecord) -> SegmentDetails:
    text, shown = services.describe_segment(uow=uow, record=record)
    return SegmentDetails(
        message="success",
        id=record.id,
        created_at=iso(record.created_at) or "",
        updated_at=iso(record.updated_at) or "",
        name=record.name,
        description=record.description,
        text_description=text,
        tags=list(record.tags),
        teams=[],
        filter=shown,
        filter_version=record.filter_version,
        archived=record.archived_at is not None,
    )


async def _write(request: Request, segment_id: str | None) -> Response:
    c = container(request)
    body = await read_json(request)
    key = api_key(request, body)
    if not isinstance(body, dict):
        raise InvalidSegment("body", "must be a JSON object")
    unknown = sorted(set(body) - set(SegmentIn.__struct_fields__))
    if unknown:
        raise InvalidSegment(unknown[0], "unknown field")
    wire = decode_as(body, SegmentIn)
    draft = services.SegmentDraft(
        name=wire.name, filter=wire.filter, description=wire.description, tags=wire.tags,
        filter_version=wire.filter_version, analytics_tracking_enabled=wire.analytics_tracking_enabled,
    )  # fmt: skip

    def run() -> SegmentDetails:
        with c.uow() as uow:
            workspace_id = _auth(uow, key, "segments.write")
            if segment_id is None:
                record = services.create_segment(uow=uow, workspace_id=workspace_id, draft=draft, now=c.now())
            else:
                record = services.update_segment(
                    uow=uow, workspace_id=workspace_id, segment_id=segment_id, draft=draft, now=c.now()
                )
        with c.uow(readonly=True) as uow:
            return _details(c, uow, record)

    return JSONResponse(await in_thread(run), status_code=201 if segment_id is None else 200)


async def post_segment(request: Request) -> Response:
    """`POST /segments`: create a segment."""
    return await _write(request, None)


async def put_segment(request: Request) -> Response:
    """`PUT /segments/{segment_id}`: replace a segment's definition."""
    return await _write(request, request.path_params["segment_id"])


async def _archive(request: Request, archived: bool) -> Response:
    c, key, segment_id = container(request), api_key(request, None), request.path_params["segment_id"]

    def run() -> SegmentDetails:
        with c.uow() as uow:
            ws = _auth(uow, key, "segments.write")
            record = services.set_archived(
                uow=uow, workspace_id=ws, segment_id=segment_id, archived=archived, now=c.now()
            )
        with c.uow(readonly=True) as uow:
            return _details(c, uow, record)

    return JSONResponse(await in_thread(run))


async def archive_segment(request: Request) -> Response:
    """`POST /segments/{segment_id}/archive`."""
    return await _archive(request, True)


async def unarchive_segment(request: Request) -> Response:
    """`POST /segments/{segment_id}/unarchive`."""
    return await _archive(request, False)


async def get_list(request: Request) -> Response:
    """`GET /segments/list?page=0&sort_direction=asc`: 100 segments a page, by creation time."""
    q = request.query_params
    page = q.get("page", "0")
    if not page.isdigit():
        raise InvalidSegment("page", "must be a non-negative integer")
    if q.get("sort_direction", "asc") not in ("asc", "desc"):
        raise InvalidSegment("sort_direction", "must be asc or desc")
    archived = q.get("include_archived", "false") == "true"

    def work(uow: SqlUnitOfWork, ws: str) -> list[SegmentRecord]:
        return services.list_segments(uow=uow, workspace_id=ws, include_archived=archived)

    found = await in_thread(_read(request, "segments.list", work))
    if q.get("sort_direction") == "desc":
        found.reverse()
    rows = found[int(page) * PAGE : (int(page) + 1) * PAGE]
    return JSONResponse(
        SegmentList(
            segments=[SegmentSummary(r.id, r.name, r.analytics_tracking_enabled, list(r.tags)) for r in rows]
        )
    )


async def get_details(request: Request) -> Response:
    """`GET /segments/details?segment_id=`."""
    segment_id = request.query_params.get("segment_id") or ""
    c = container(request)

    def work(uow: SqlUnitOfWork, ws: str) -> SegmentDetails:
        record = services.require_segment(uow=uow, workspace_id=ws, segment_id=segment_id)
        return _details(c, uow, record)

    return JSONResponse(await in_thread(_read(request, "segments.details", work)))


def _evaluate(
    c: Container, uow: SqlUnitOfWork, ws: str, segment_id: str
) -> tuple[SegmentRecord, BitMap, float]:
    now = c.now()
    record, members = services.evaluate_segment(
        uow=uow, indexes=c.segments, membership=c.membership, workspace_id=ws, segment_id=segment_id, now=now
    )
    return record, members, now


def _record_history(c: Container, record: SegmentRecord, members: BitMap, now: float) -> None:
    due = c.segments.history_due(record.pk, len(members), now=now)
    if due is not None:
        with c.uow() as uow:
            services.record_segment_size(uow=uow, record=record, members=members, snapshot=due, now=now)


async def get_size(request: Request) -> Response:
    """`GET /segments/{segment_id}/size`: the exact size now (recorded in the size history)."""
    c, segment_id = container(request), request.path_params["segment_id"]

    def work(uow: SqlUnitOfWork, ws: str) -> tuple[SegmentRecord, BitMap, float]:
        return _evaluate(c, uow, ws, segment_id)

    def run() -> SegmentSize:
        record, members, now = _read(request, "segments.read", work)()
        _record_history(c, record, members, now)
        return SegmentSize("success", record.id, len(members), iso(now) or "")

    return JSONResponse(await in_thread(run))


def _limit(text: str | None, default: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= services.MAX_PAGE:
        raise InvalidSegment("limit", f"must be an integer from 1 to {services.MAX_PAGE}")
    return int(text)


def _cursor(text: str | None) -> int:
    if not text:
        return -1
    if not text.isdigit() or len(text) > 19:
        raise InvalidSegment("cursor", "must be a `next_cursor` returned by this endpoint")
    return int(text)


async def get_members(request: Request) -> Response:
    """`GET /segments/{segment_id}/members?cursor=&limit=` (or `?format=csv` for every member)."""
    c, segment_id, q = container(request), request.path_params["segment_id"], request.query_params
    if q.get("format", "json") not in ("json", "csv"):
        raise InvalidSegment("format", "must be json or csv")
    limit, after = _limit(q.get("limit"), services.MAX_PAGE), _cursor(q.get("cursor"))

    def work(uow: SqlUnitOfWork, ws: str) -> tuple[BitMap, list[tuple[int, str, str | None]], int | None]:
        _, members, _ = _evaluate(c, uow, ws, segment_id)
        if q.get("format") == "csv":
            return members, [], None
        rows, cursor = services.page_members(uow=uow, members=members, after=after, limit=limit)
        return members, rows, cursor

    members, rows, cursor = await in_thread(_read(request, "segments.read", work))
    if q.get("format") == "csv":
        headers = {"content-disposition": f'attachment; filename="segment-{segment_id}.csv"'}
        return StreamingResponse(member_csv(c, members), media_type="text/csv", headers=headers)
    page = MembersPage(
        "success", [Member(b, e) for _, b, e in rows], str(cursor) if cursor is not None else None
    )
    return JSONResponse(page)


def member_csv(c: Container, members: BitMap) -> Iterator[str]:
    """Every member as CSV rows (`braze_id,external_id`), read a page at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["braze_id", "external_id"])
    after = -1
    while True:
        with c.uow(readonly=True) as uow:
            rows, cursor = services.page_members(
                uow=uow, members=members, after=after, limit=services.MAX_PAGE
            )
        writer.writerows([(b, e or "") for _, b, e in rows])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if cursor is None:
            return
        after = cursor


async def get_explain(request: Request) -> Response:
    """`GET /segments/{segment_id}/explain?external_id=`: which leaves matched for that user."""
    c, segment_id = container(request), request.path_params["segment_id"]
    external_id = request.query_params.get("external_id") or ""
    if not external_id:
        raise InvalidSegment("external_id", "is required")

    def work(uow: SqlUnitOfWork, ws: str) -> dict[str, Any]:
        return services.explain_user(
            uow=uow, membership=c.membership, workspace_id=ws, segment_id=segment_id,
            external_id=external_id, now=c.now(),
        )  # fmt: skip

    tree = await in_thread(_read(request, "segments.read", work))
    return JSONResponse(
        {"message": "success", "external_id": external_id, "matched": tree["matched"], "filter": tree}
    )


def _since(text: str | None) -> float:
    try:
        return parse_time(text or "")
    except ValueError:
        raise InvalidSegment("since", "must be an ISO-8601 date or date-time") from None


async def get_changes(request: Request) -> Response:
    """`GET /segments/{segment_id}/changes?since=&limit=`: who entered and who left since then."""
    c, segment_id, q = container(request), request.path_params["segment_id"], request.query_params
    since, limit = _since(q.get("since")), _limit(q.get("limit"), services.MAX_PAGE)

    def work(uow: SqlUnitOfWork, ws: str) -> SegmentChanges:
        record, members, _ = _evaluate(c, uow, ws, segment_id)
        at, entered, left = services.segment_changes(uow=uow, record=record, members=members, since=since)

        def first(bm: BitMap) -> list[Member]:
            nums = [n for n, _ in zip(bm, range(limit), strict=False)]
            return [Member(b, e) for _, b, e in uow.segments.members(nums)]

        return SegmentChanges(
            "success", iso(since) or "", iso(at), len(entered), len(left), first(entered), first(left)
        )

    return JSONResponse(await in_thread(_read(request, "segments.read", work)))


async def get_history(request: Request) -> Response:
    """`GET /segments/{segment_id}/history?since=`: recorded sizes, oldest first."""
    segment_id, q = request.path_params["segment_id"], request.query_params
    since = _since(q.get("since")) if q.get("since") else 0.0

    def work(uow: SqlUnitOfWork, ws: str) -> dict[str, Any]:
        record = services.require_segment(uow=uow, workspace_id=ws, segment_id=segment_id)
        points = uow.segments.sizes(record.pk, since=since)
        return {"message": "success", "sizes": [{"at": iso(at), "size": size} for at, size in points]}

    return JSONResponse(await in_thread(_read(request, "segments.read", work)))


ROUTES: list[BaseRoute] = [
    Route("/segments", post_segment, methods=["POST"]),
    Route("/segments/list", get_list, methods=["GET"]),
    Route("/segments/details", get_details, methods=["GET"]),
    Route("/segments/{segment_id}", put_segment, methods=["PUT"]),
    Route("/segments/{segment_id}/archive", archive_segment, methods=["POST"]),
    Route("/segments/{segment_id}/unarchive", unarchive_segment, methods=["POST"]),
    Route("/segments/{segment_id}/size", get_size, methods=["GET"]),
    Route("/segments/{segment_id}/members", get_members, methods=["GET"]),
    Route("/segments/{segment_id}/explain", get_explain, methods=["GET"]),
    Route("/segments/{segment_id}/changes", get_changes, methods=["GET"]),
    Route("/segments/{segment_id}/history", get_history, methods=["GET"]),
]

_W, _R = (400, 401, 403, 404, 415, 423), (400, 401, 403, 404)


def _op(method: str, path: str, summary: str, **kw: Any) -> Operation:
    return Operation(method=method, path=path, summary=summary, tag="Segments", **kw)


OPERATIONS: list[Operation] = [
    _op("POST", "/segments", "Create a segment", request=SegmentIn, response=SegmentDetails, status=201,
        errors=_W),
    _op("PUT", "/segments/{segment_id}", "Replace a segment's definition", request=SegmentIn,
        response=SegmentDetails, errors=_W),
    _op("GET", "/segments/list", "List segments (Braze shape)", response=SegmentList, errors=_R,
        query=(("page", "0-based page of 100"), ("sort_direction", "asc or desc by creation time"),
               ("include_archived", "true to list archived segments too"))),
    _op("GET", "/segments/details", "A segment's details (Braze shape plus filter)", response=SegmentDetails,
        errors=_R, query=(("segment_id", "The segment's id"),)),
    _op("POST", "/segments/{segment_id}/archive", "Archive a segment", response=SegmentDetails, errors=_W),
    _op("POST", "/segments/{segment_id}/unarchive", "Unarchive a segment", response=SegmentDetails,
        errors=_W),
    _op("GET", "/segments/{segment_id}/size", "The exact size now", response=SegmentSize, errors=_R),
    _op("GET", "/segments/{segment_id}/members", "Page through the members, or export them as CSV",
        response=MembersPage, errors=_R,
        query=(("cursor", "The `next_cursor` of the previous page"), ("limit", "1 to 1000 (default 1000)"),
               ("format", "json (default) or csv (every member, streamed)"))),
    _op("GET", "/segments/{segment_id}/explain", "Which filters matched or failed for one user", errors=_R,
        query=(("external_id", "The user's external_id"),)),
    _op("GET", "/segments/{segment_id}/changes", "Who entered and who left since a time",
        response=SegmentChanges, errors=_R,
        query=(("since", "ISO-8601 time"), ("limit", "Members listed per side, 1 to 1000"))),
    _op("GET", "/segments/{segment_id}/history", "Recorded size history", errors=_R,
        query=(("since", "ISO-8601 time (default: all)"),)),
]  # fmt: skip
