"""The Braze-compatible users API: `/users/track`, `/identify`, `/alias/new`, `/delete`, `/export/ids`.

Each endpoint authenticates the REST API key (`Authorization: Bearer KEY`, or the legacy
`api_key` body field) for its permission, then runs one identity use case in a worker thread;
`/users/track` authenticates a key it has seen authenticate inside its write transaction (one unit of
work, not two), any other key before it.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api import users_wire as wire
from cohorthub.api.http import JSONResponse, api_key, container, read_json, write_in_thread
from cohorthub.api.openapi import Operation
from cohorthub.bootstrap import Container
from cohorthub.cohorts.services import memberships_of
from cohorthub.identity import services
from cohorthub.identity.requests import parse_track
from cohorthub.workspaces.ports import WorkspaceUnitOfWork
from cohorthub.workspaces.services import authenticate_rest_key

ERRORS = (400, 401, 403, 413, 415, 423)


@dataclass(frozen=True, slots=True)
class Credentials:
    """The REST API key a request presented, and the permission its endpoint needs."""

    key: str | None
    permission: str

    def workspace_id(self, uow: WorkspaceUnitOfWork) -> str:
        """The key's workspace; `InvalidApiKey` (401) or `PermissionDenied` (403) otherwise."""
        return authenticate_rest_key(uow=uow, key=self.key, permission=self.permission).workspace_id


UseCase = Callable[[Container, Credentials, Any], dict[str, Any]]
WorkspaceUseCase = Callable[[Container, str, Any], dict[str, Any]]


def _authenticated(use_case: WorkspaceUseCase) -> UseCase:
    """A use case run once the key is authenticated in a read-only unit of work of its own."""

    def run(c: Container, credentials: Credentials, body: Any) -> dict[str, Any]:
        with c.uow(readonly=True) as uow:
            workspace_id = credentials.workspace_id(uow)
        return use_case(c, workspace_id, body)

    return run


class KnownKeys:
    """Credentials that authenticated in this process (a bounded set).

    `/users/track` authenticates a known key inside its write transaction (one unit of work), and
    any other key in a read-only one first, so a wrong key never takes the writer's turn. A known
    key is still checked inside the write transaction: a key revoked meanwhile is refused there.
    """

    LIMIT = 1024

    def __init__(self) -> None:
        self._known: set[Credentials] = set()
        self._lock = threading.Lock()

    def __contains__(self, credentials: Credentials) -> bool:
        return credentials in self._known

    def add(self, credentials: Credentials) -> None:
        """Remember credentials that authenticated (forgetting all of them once `LIMIT` are held)."""
        with self._lock:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            self._known.add(credentials)


KNOWN_KEYS = KnownKeys()


def _authenticate_apart(c: Container, credentials: Credentials) -> None:
    """Authenticate in a read-only unit of work of its own (401/403 without the writer's turn)."""
    with c.uow(readonly=True) as uow:
        credentials.workspace_id(uow)
    KNOWN_KEYS.add(credentials)


def _track(c: Container, credentials: Credentials, body: Any) -> dict[str, Any]:
    now = c.now()
    try:  # before the writer's turn: another request's SQL runs meanwhile
        batch = parse_track(body, now=now)
    except Exception:  # an unusable body: 401/403 still come first, and it takes no writer's turn
        _authenticate_apart(c, credentials)
        raise
    if credentials not in KNOWN_KEYS:
        _authenticate_apart(c, credentials)
    with c.uow(group=True) as uow:  # SQLite: one commit (one fsync) for concurrent requests
        workspace_id = credentials.workspace_id(uow)  # in the write transaction: one unit of work
        result = services.record_track(
            uow=uow, workspace_id=workspace_id, batch=batch, listeners=c.identity_listeners, now=now
        )
    response: dict[str, Any] = {"message": "success"}
    for name in ("attributes", "events", "purchases"):
        if isinstance(body.get(name), list) and body[name]:
            response[f"{name}_processed"] = getattr(result, f"{name}_processed")
    if result.errors:
        response["errors"] = [e.wire() for e in result.errors]
    return response


def _identify(c: Container, workspace_id: str, body: Any) -> dict[str, Any]:
    with c.uow() as uow:
        result = services.identify_users(
            uow=uow, workspace_id=workspace_id, body=body, listeners=c.identity_listeners, now=c.now()
        )
    response: dict[str, Any] = {"aliases_processed": result.aliases_processed, "message": "success"}
    if body.get("emails_to_identify"):
        response["emails_processed"] = result.emails_processed
    if body.get("phone_numbers_to_identify"):
        response["phone_numbers_processed"] = result.phones_processed
    return response


def _alias(c: Container, workspace_id: str, body: Any) -> dict[str, Any]:
    with c.uow() as uow:
        result = services.add_aliases(uow=uow, workspace_id=workspace_id, body=body, now=c.now())
    response: dict[str, Any] = {"aliases_processed": result.aliases_processed, "message": "success"}
    if result.errors:
        response["errors"] = result.errors
    return response


def _delete(c: Container, workspace_id: str, body: Any) -> dict[str, Any]:
    with c.uow() as uow:
        deleted = services.delete_users(
            uow=uow, workspace_id=workspace_id, body=body, listeners=c.identity_listeners, now=c.now()
        )
    return {"deleted": deleted, "message": "success"}


def _export(c: Container, workspace_id: str, body: Any) -> dict[str, Any]:
    with c.uow(readonly=True) as uow:

        def memberships(nums: list[int]) -> dict[int, list[dict[str, str]]]:
            return memberships_of(uow=uow, cache=c.membership, workspace_id=workspace_id, user_nums=nums)

        result = services.export_users(uow=uow, workspace_id=workspace_id, body=body, memberships=memberships)
    response: dict[str, Any] = {"users": result.users, "message": "success"}
    if result.invalid_user_ids:
        response["invalid_user_ids"] = result.invalid_user_ids
    return response


def _endpoint(permission: str, use_case: UseCase, status: int) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        c = container(request)
        body = await read_json(request)
        credentials = Credentials(api_key(request, body), permission)

        def work() -> dict[str, Any]:
            return use_case(c, credentials, body)

        return JSONResponse(await write_in_thread(work), status_code=status)

    return handle


ROUTES: list[BaseRoute] = [
    Route("/users/track", _endpoint("users.track", _track, 201), methods=["POST"]),
    Route("/users/identify", _endpoint("users.identify", _authenticated(_identify), 201), methods=["POST"]),
    Route("/users/alias/new", _endpoint("users.alias.new", _authenticated(_alias), 201), methods=["POST"]),
    Route("/users/delete", _endpoint("users.delete", _authenticated(_delete), 201), methods=["POST"]),
    Route("/users/export/ids", _endpoint("users.export.ids", _authenticated(_export), 200), methods=["POST"]),
]

OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        "/users/track",
        "Record attributes, custom events and purchases",
        "users",
        request=wire.TrackRequest,
        response=wire.TrackResponse,
        status=201,
        errors=ERRORS,
        description=(
            "Up to 75 objects in each array. An invalid object is skipped and listed in `errors` "
            "(non-fatal); a request with no valid object, or an array over 75, is a 400. "
            "An object with `external_id` and `device_id` is the sign-in of that device."
        ),
    ),
    Operation(
        "POST",
        "/users/identify",
        "Identify alias-, email- or phone-only profiles",
        "users",
        request=wire.IdentifyRequest,
        response=wire.IdentifyResponse,
        status=201,
        errors=ERRORS,
    ),
    Operation(
        "POST",
        "/users/alias/new",
        "Add aliases to identified users or create alias-only users",
        "users",
        request=wire.AliasRequest,
        response=wire.AliasResponse,
        status=201,
        errors=ERRORS,
    ),
    Operation(
        "POST",
        "/users/delete",
        "Delete users and everything recorded about them",
        "users",
        request=wire.DeleteRequest,
        response=wire.DeleteResponse,
        status=201,
        errors=ERRORS,
        description=(
            "Up to 50 identifiers in all, of any kinds. An email address or phone number deletes "
            "the one user that has it, or the one its `prioritization` picks "
            "(`identified` or `unidentified`, then `most_recently_updated` or "
            "`least_recently_updated`); when several remain, no one is deleted. Emails match "
            "case-insensitively. Users leave their partner cohorts in the same transaction."
        ),
    ),
    Operation(
        "POST",
        "/users/export/ids",
        "Export user profiles, with their partner cohorts",
        "users",
        request=wire.ExportRequest,
        response=wire.ExportResponse,
        errors=ERRORS,
    ),
]
