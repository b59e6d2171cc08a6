"""The cohort read API: `GET /cohorts` and `GET /cohorts/{partner}/{cohort_id}/members`.

Both need a REST API key with the `cohorts.read` permission (`Authorization: Bearer KEY`).
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api import params
from cohorthub.api.cohort_import import UserAlias
from cohorthub.api.http import JSONResponse, api_key, container, in_thread
from cohorthub.api.openapi import Operation, Param
from cohorthub.clock import format_iso
from cohorthub.cohorts import services
from cohorthub.cohorts.model import Cohort
from cohorthub.workspaces.services import authenticate_rest_key

PERMISSION = "cohorts.read"
DEFAULT_LIMIT, MAX_LIMIT = 100, 1_000


class CohortDiagnostics(msgspec.Struct):
    """How the partner's imports into this cohort went."""

    last_import_at: str | None
    import_requests: int
    identifiers_matched: int
    identifiers_not_matched: int
    unmatched_sample: list[str]


class CohortOut(msgspec.Struct):
    """A partner cohort; `named` is false until the partner sent its name."""

    partner: str
    cohort_id: str
    name: str
    named: bool
    size: int
    created_at: str
    updated_at: str
    diagnostics: CohortDiagnostics


class CohortList(msgspec.Struct):
    """The workspace's cohorts, by partner and name."""

    cohorts: list[CohortOut]


class Member(msgspec.Struct):
    """A member of a cohort."""

    braze_id: str
    external_id: str | None
    user_aliases: list[UserAlias]


class MembersPage(msgspec.Struct):
    """A page of members; pass `next_cursor` as `cursor` for the next one (null at the end)."""

    members: list[Member]
    next_cursor: str | None


def iso(t: float | None) -> str | None:
    """Unix seconds as ISO-8601 UTC with milliseconds."""
    if t is None:
        return None
    return format_iso(t)


def cohort_out(cohort: Cohort) -> CohortOut:
    """The wire form of a cohort."""
    created = cohort.partner_created_at if cohort.partner_created_at is not None else cohort.created_at
    return CohortOut(
        partner=cohort.partner,
        cohort_id=cohort.cohort_id,
        name=cohort.name,
        named=cohort.named,
        size=cohort.size,
        created_at=iso(created) or "",
        updated_at=iso(cohort.updated_at) or "",
        diagnostics=CohortDiagnostics(
            last_import_at=iso(cohort.last_import_at),
            import_requests=cohort.import_requests,
            identifiers_matched=cohort.identifiers_matched,
            identifiers_not_matched=cohort.identifiers_unmatched,
            unmatched_sample=cohort.unmatched_sample,
        ),
    )


async def get_cohorts(request: Request) -> Response:
    """`GET /cohorts?partner=heap`: the workspace's cohorts with size and diagnostics."""
    c, key = container(request), api_key(request, None)
    partner = request.query_params.get("partner") or None

    def run() -> list[Cohort]:
        with c.uow(readonly=True) as uow:
            workspace_id = authenticate_rest_key(uow=uow, key=key, permission=PERMISSION).workspace_id
            return services.list_cohorts(uow=uow, workspace_id=workspace_id, partner=partner)

    found = await in_thread(run)
    return JSONResponse(CohortList(cohorts=[cohort_out(x) for x in found]))


async def get_members(request: Request) -> Response:
    """`GET /cohorts/{partner}/{cohort_id}/members?limit=&cursor=`: members in a stable order."""
    c, key = container(request), api_key(request, None)
    partner, cohort_id = request.path_params["partner"], request.path_params["cohort_id"]
    limit = params.integer(request.query_params, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    after = params.cursor(request.query_params)

    def run() -> services.MembersPage:
        with c.uow(readonly=True) as uow:
            workspace_id = authenticate_rest_key(uow=uow, key=key, permission=PERMISSION).workspace_id
            return services.cohort_members(
                uow=uow, cache=c.membership, workspace_id=workspace_id, partner=partner,
                cohort_id=cohort_id, limit=limit, after=after,
            )  # fmt: skip

    page = await in_thread(run)
    return JSONResponse({"members": page.members, "next_cursor": page.next_cursor})


ROUTES: list[BaseRoute] = [
    Route("/cohorts", get_cohorts, methods=["GET"]),
    Route("/cohorts/{partner}/{cohort_id:path}/members", get_members, methods=["GET"]),
]

OPERATIONS: list[Operation] = [
    Operation(
        method="GET",
        path="/cohorts",
        summary="List partner cohorts with size and import diagnostics",
        tag="Cohorts",
        response=CohortList,
        errors=(401, 403, 404),
        query=(("partner", "Only this partner's cohorts (e.g. heap)"),),
    ),
    Operation(
        method="GET",
        path="/cohorts/{partner}/{cohort_id}/members",
        summary="Page through a cohort's members",
        tag="Cohorts",
        response=MembersPage,
        errors=(400, 401, 403, 404),
        query=(
            Param(
                "limit", f"Members per page (default {DEFAULT_LIMIT})", params.integer_schema(1, MAX_LIMIT)
            ),
            Param("cursor", "The `next_cursor` of the previous page", params.CURSOR_SCHEMA),
        ),
        path_params={"partner": "The partner, e.g. heap", "cohort_id": "The partner's cohort id"},
    ),
]
