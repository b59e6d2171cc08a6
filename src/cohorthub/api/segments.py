"""The segments API: define (Braze-compatible list/details shapes), size, members, explain, changes.

Every endpoint needs a REST API key (`Authorization: Bearer KEY`) with its permission:
`segments.write` (create, replace, archive), `segments.list`, `segments.details`,
`segments.read` (size, members, explain, changes, history).
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, TypeVar

import msgspec
from pyroaring import BitMap
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cohorthub.api import params
from cohorthub.api.cohorts import iso
from cohorthub.api.http import JSONResponse, api_key, container, decode_as, in_thread, read_json
from cohorthub.api.openapi import NO_NUL, NOT_BLANK, Operation, Param, documented
from cohorthub.bootstrap import Container
from cohorthub.segments import services
from cohorthub.segments.errors import InvalidSegment
from cohorthub.segments.history import HistoryPoint, HistoryWriter
from cohorthub.segments.model import FILTER_VERSION
from cohorthub.segments.ports import SegmentRecord
from cohorthub.store.priority import READS
from cohorthub.store.uow import SqlUnitOfWork
from cohorthub.workspaces.services import authenticate_rest_key

T = TypeVar("T")
PAGE = 100
MAX_PAGE_NUMBER = 10**18
UNSET: Any = msgspec.UNSET


class SegmentIn(msgspec.Struct, forbid_unknown_fields=True):
    """A segment definition; `filter` is the JSON filter tree (docs/segments.md)."""

    name: Annotated[Any, documented(type="string", minLength=1, maxLength=200, pattern=NOT_BLANK)]
    filter: Annotated[Any, documented(type="object", description="The filter tree (docs/segments.md)")]
    description: Annotated[Any, documented(type="string", pattern=NO_NUL)] = ""
    tags: Annotated[
        Any, documented(type="array", items={"type": "string", "minLength": 1, "pattern": NO_NUL})
    ] = msgspec.field(default_factory=list)
    filter_version: Annotated[Any, documented(type="integer", enum=[FILTER_VERSION])] = FILTER_VERSION
    analytics_tracking_enabled: Annotated[Any, documented(type="boolean")] = False
    api_key: str | None = None


class Explanation(msgspec.Struct):
    """Whether the user is in the segment, and the tree with `matched` on every node."""

    message: str
    external_id: str
    matched: bool
    filter: dict[str, Any]


class SizePoint(msgspec.Struct):
    """A recorded size."""

    at: str
    size: int


class SizeHistory(msgspec.Struct):
    """Recorded sizes, oldest first."""

    message: str
    sizes: list[SizePoint]


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

    def run() -> T:  # segment reads go before bulk writes of this process (store/priority.py)
        with READS.reading(), c.uow(readonly=True) as uow:
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
    page = params.integer(q, "page", default=0, low=0, high=MAX_PAGE_NUMBER)
    descending = params.choice(q, "sort_direction", ("asc", "desc")) == "desc"
    archived = params.choice(q, "include_archived", ("false", "true")) == "true"

    def work(uow: SqlUnitOfWork, ws: str) -> list[SegmentRecord]:
        return services.list_segments(uow=uow, workspace_id=ws, include_archived=archived)

    found = await in_thread(_read(request, "segments.list", work))
    if descending:
        found.reverse()
    rows = found[page * PAGE : (page + 1) * PAGE]
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


def _history(c: Container) -> HistoryWriter:
    """This process's size-history writer (created on first use)."""
    with _history_lock:
        writer = c.extras.get("segment_history")
        if not isinstance(writer, HistoryWriter):

            def store(points: list[HistoryPoint]) -> None:
                with c.uow() as uow:
                    services.record_history(uow=uow, points=points)

            writer = c.extras["segment_history"] = HistoryWriter(store)
        return writer


_history_lock = threading.Lock()


def _record_history(c: Container, record: SegmentRecord, members: BitMap, now: float) -> None:
    """Queue the point this read makes: a size read never waits for the database's writer."""
    point = services.history_point(indexes=c.segments, record=record, members=members, now=now)
    if point is not None:
        _history(c).submit(point)


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


async def get_members(request: Request) -> Response:
    """`GET /segments/{segment_id}/members?cursor=&limit=` (or `?format=csv` for every member)."""
    c, segment_id, q = container(request), request.path_params["segment_id"], request.query_params
    csv_export = params.choice(q, "format", ("json", "csv")) == "csv"
    limit, cursor = _limit(q), params.cursor(q)
    after = -1 if cursor is None else cursor

    def work(uow: SqlUnitOfWork, ws: str) -> tuple[BitMap, list[tuple[int, str, str | None]], int | None]:
        _, members, _ = _evaluate(c, uow, ws, segment_id)
        if csv_export:
            return members, [], None
        rows, cursor = services.page_members(uow=uow, members=members, after=after, limit=limit)
        return members, rows, cursor

    members, rows, cursor = await in_thread(_read(request, "segments.read", work))
    if csv_export:
        headers = {"content-disposition": f'attachment; filename="segment-{segment_id}.csv"'}
        return StreamingResponse(member_csv(c, members), media_type="text/csv", headers=headers)
    page = MembersPage(
        "success", [Member(b, e) for _, b, e in rows], str(cursor) if cursor is not None else None
    )
    return JSONResponse(page)


def member_csv(c: Container, members: BitMap, cell: Callable[[str], str] = str) -> Iterator[str]:
    """Every member as CSV rows (`braze_id,external_id`), read a page at a time; `cell` writes each value."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["braze_id", "external_id"])
    after = -1
    while True:
        with c.uow(readonly=True) as uow:
            rows, cursor = services.page_members(
                uow=uow, members=members, after=after, limit=services.MAX_PAGE
            )
        writer.writerows([(cell(b), cell(e or "")) for _, b, e in rows])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if cursor is None:
            return
        after = cursor


async def get_explain(request: Request) -> Response:
    """`GET /segments/{segment_id}/explain?external_id=`: which leaves matched for that user."""
    c, segment_id = container(request), request.path_params["segment_id"]
    external_id = params.required(request.query_params, "external_id")

    def work(uow: SqlUnitOfWork, ws: str) -> dict[str, Any]:
        return services.explain_user(
            uow=uow, membership=c.membership, workspace_id=ws, segment_id=segment_id,
            external_id=external_id, now=c.now(),
        )  # fmt: skip

    tree = await in_thread(_read(request, "segments.read", work))
    return JSONResponse(
        {"message": "success", "external_id": external_id, "matched": tree["matched"], "filter": tree}
    )


def _limit(q: Mapping[str, str]) -> int:
    return params.integer(q, "limit", default=services.MAX_PAGE, low=1, high=services.MAX_PAGE)


async def get_changes(request: Request) -> Response:
    """`GET /segments/{segment_id}/changes?since=&limit=`: who entered and who left since then."""
    c, segment_id, q = container(request), request.path_params["segment_id"], request.query_params
    since, limit = params.moment(q, "since"), _limit(q)
    assert since is not None

    def work(uow: SqlUnitOfWork, ws: str) -> SegmentChanges:
        record, members, _ = _evaluate(c, uow, ws, segment_id)
        at, entered, left = services.segment_changes(uow=uow, record=record, members=members, since=since)

        def first(bm: BitMap) -> list[Member]:
            nums = [n for n, _ in zip(bm, range(limit), strict=False)]
            return [Member(b, e) for _, b, e in uow.segments.members(nums)]

        return SegmentChanges(
            "success", iso(since) or "", iso(at), len(entered), len(left), first(entered), first(left)
        )

    await in_thread(_history(c).flush)  # this process's own recent snapshots first
    return JSONResponse(await in_thread(_read(request, "segments.read", work)))


async def get_history(request: Request) -> Response:
    """`GET /segments/{segment_id}/history?since=`: recorded sizes, oldest first."""
    segment_id, q = request.path_params["segment_id"], request.query_params
    since = params.moment(q, "since", optional=True) or 0.0
    await in_thread(_history(container(request)).flush)  # this process's own recent points first

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
_ID = {"segment_id": "The segment's id"}
_LIMIT = Param("limit", "Members listed (default 1000)", params.integer_schema(1, services.MAX_PAGE))
_SINCE = "ISO-8601 date or date-time (UTC when no offset), from year 1 to 9999"


def _op(method: str, path: str, summary: str, **kw: Any) -> Operation:
    return Operation(method=method, path=path, summary=summary, tag="Segments", path_params=_ID, **kw)


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


OPERATIONS: list[Operation] = [
    _op("POST", "/segments", "Create a segment", request=SegmentIn, response=SegmentDetails, status=201,
        errors=_W),
    _op("PUT", "/segments/{segment_id}", "Replace a segment's definition", request=SegmentIn,
        response=SegmentDetails, errors=_W),
    _op("GET", "/segments/list", "List segments (Braze shape)", response=SegmentList, errors=_R,
        query=(Param("page", "0-based page of 100", params.integer_schema(0, MAX_PAGE_NUMBER)),
               Param("sort_direction", "By creation time (default asc)", _enum("asc", "desc")),
               Param("include_archived", "true to list archived segments too", _enum("false", "true")))),
    _op("GET", "/segments/details", "A segment's details (Braze shape plus filter)", response=SegmentDetails,
        errors=_R, query=(("segment_id", "The segment's id"),)),
    _op("POST", "/segments/{segment_id}/archive", "Archive a segment", response=SegmentDetails, errors=_W),
    _op("POST", "/segments/{segment_id}/unarchive", "Unarchive a segment", response=SegmentDetails,
        errors=_W),
    _op("GET", "/segments/{segment_id}/size", "The exact size now", response=SegmentSize, errors=_R),
    _op("GET", "/segments/{segment_id}/members", "Page through the members, or export them as CSV",
        response=MembersPage, errors=_R, media={"text/csv": {"type": "string"}},
        query=(Param("cursor", "The `next_cursor` of the previous page", params.CURSOR_SCHEMA), _LIMIT,
               Param("format", "json (default) or csv (every member, streamed)", _enum("json", "csv")))),
    _op("GET", "/segments/{segment_id}/explain", "Which filters matched or failed for one user", errors=_R,
        response=Explanation,
        query=(Param("external_id", "The user's external_id", {"type": "string", "minLength": 1}, True),)),
    _op("GET", "/segments/{segment_id}/changes", "Who entered and who left since a time",
        response=SegmentChanges, errors=_R,
        query=(Param("since", _SINCE, {"type": "string", "minLength": 1}, True), _LIMIT)),
    _op("GET", "/segments/{segment_id}/history", "Recorded size history", errors=_R, response=SizeHistory,
        query=(("since", f"{_SINCE} (default: all)"),)),
]  # fmt: skip
