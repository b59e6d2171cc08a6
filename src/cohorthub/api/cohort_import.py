"""The partner cohort import API: `POST /partners/{partner}/cohorts` and `/cohorts/users`.

Checks run in the documented order: unknown partner (404), a usable JSON object (415/413/400),
`partner_api_key` and `client_secret` (401), the fields (400), the hourly quota (429).
"""

from __future__ import annotations

import uuid

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api.http import JSONResponse, container, read_json, write_in_thread
from cohorthub.api.openapi import Operation
from cohorthub.cohorts import services
from cohorthub.partners.services import get_partner


class CohortNameBody(msgspec.Struct):
    """Create a cohort, or rename one the partner already sent."""

    partner_api_key: str
    client_secret: str
    cohort_id: str
    name: str
    created_at: str


class UserAlias(msgspec.Struct):
    """A user alias: `alias_label` is the key (e.g. "email"), `alias_name` the value."""

    alias_label: str
    alias_name: str


class CohortChangeBody(msgspec.Struct):
    """Users to add (or remove with `should_remove: true`); at least one identifier key."""

    user_ids: list[str] | None = None
    device_ids: list[str] | None = None
    aliases: list[UserAlias] | None = None
    should_remove: bool | None = None


class CohortUsersBody(msgspec.Struct):
    """A delta of users who entered or left the cohort; at most 1,000 identifiers in all."""

    partner_api_key: str
    client_secret: str
    cohort_id: str
    cohort_changes: list[CohortChangeBody]


class CohortNameResponse(msgspec.Struct):
    """The cohort is stored under its new name."""

    message: str
    cohort_id: str
    name: str
    created: bool


class CohortUsersResponse(msgspec.Struct):
    """The changes are applied and durable."""

    message: str
    cohort_id: str
    request_id: str
    identifiers: int
    identifiers_matched: int
    identifiers_not_matched: int
    entered: int
    left: int
    size: int


async def post_cohort(request: Request) -> Response:
    """`POST /partners/{partner}/cohorts`: create or rename a cohort."""
    partner = get_partner(request.path_params["partner"]).name
    body = await read_json(request)
    c = container(request)

    def run() -> services.NamedCohort:
        with c.uow() as uow:
            return services.name_cohort(
                uow=uow, partner=partner, body=body, quota=c.settings.partner_hourly_quota, now=c.now()
            )

    named = await write_in_thread(run)
    return JSONResponse(CohortNameResponse("success", named.cohort_id, named.name, named.created), 201)


async def post_cohort_users(request: Request) -> Response:
    """`POST /partners/{partner}/cohorts/users`: users enter or leave a cohort."""
    partner = get_partner(request.path_params["partner"]).name
    body = await read_json(request)
    c = container(request)
    request_id = str(uuid.uuid4())

    def run() -> services.ImportResult:
        with c.uow(group=True) as uow:  # SQLite: one commit (one fsync) for concurrent requests
            return services.import_cohort_changes(
                uow=uow,
                cache=c.membership,
                partner=partner,
                body=body,
                quota=c.settings.partner_hourly_quota,
                identifier_max_length=c.settings.identifier_max_length,
                compaction_threshold=c.settings.compaction_threshold,
                request_id=request_id,
                now=c.now(),
                listeners=c.cohort_listeners,
            )

    r = await write_in_thread(run)
    response = CohortUsersResponse(
        "success", r.cohort_id, r.request_id, r.identifiers, r.matched, r.unmatched, r.entered, r.left, r.size
    )
    return JSONResponse(response, 201)


ROUTES: list[BaseRoute] = [
    Route("/partners/{partner}/cohorts", post_cohort, methods=["POST"]),
    Route("/partners/{partner}/cohorts/users", post_cohort_users, methods=["POST"]),
]

_ERRORS = (400, 401, 404, 413, 415, 423, 429)
OPERATIONS: list[Operation] = [
    Operation(
        method="POST",
        path="/partners/{partner}/cohorts",
        summary="Create or rename a partner cohort",
        tag="Partner cohort import",
        request=CohortNameBody,
        response=CohortNameResponse,
        status=201,
        errors=_ERRORS,
        auth="partner-body",
        description="Called when a cohort is first exported and whenever its name changes. "
        "`created_at` is ISO-8601; the first value sent is kept.",
    ),
    Operation(
        method="POST",
        path="/partners/{partner}/cohorts/users",
        summary="Add users to or remove users from a partner cohort",
        tag="Partner cohort import",
        request=CohortUsersBody,
        response=CohortUsersResponse,
        status=201,
        errors=_ERRORS,
        auth="partner-body",
        description="`user_ids` match external ids, `aliases` match label and name, `device_ids` match "
        "anonymous users only. Unknown identifiers are ignored. At most 1,000 identifiers per request; "
        "change objects apply in order.",
    ),
]
