"""`POST /users/import`: bulk user import of a CSV or JSON lines file (docs/users-api.md, "Bulk import").

The body is the file itself (`Content-Type: text/csv` or `application/x-ndjson`), at most
`COHORTHUB_IMPORT_MAX_BYTES`. The REST API key needs `users.import`. The import commits chunk by
chunk; the 201 comes after the last commit, with the summary.
"""

from __future__ import annotations

import io
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api.http import JSONResponse, api_key, container, in_thread, read_body
from cohorthub.api.openapi import Operation
from cohorthub.identity.bulk import decode_text, format_of, parse_rows
from cohorthub.workspaces.services import authenticate_rest_key

PERMISSION = "users.import"


class RowError(msgspec.Struct):
    """A rejected row: its line number in the file (the header is line 1) and why."""

    line: int
    reason: str


class ImportResponse(msgspec.Struct):
    """What the import did; the counts are exact, `errors` lists the first 100 rejected rows."""

    message: str
    rows: int
    created: int
    updated: int
    rejected: int
    committed: int
    errors: list[RowError]


async def import_file(request: Request) -> Response:
    """Authenticate, read the file, import it chunk by chunk (in a worker thread)."""
    c = container(request)
    kind = format_of(request.headers.get("content-type", ""))
    key = api_key(request, None)

    def authenticate() -> str:
        with c.uow(readonly=True) as uow:
            return authenticate_rest_key(uow=uow, key=key, permission=PERMISSION).workspace_id

    workspace_id = await in_thread(authenticate)
    body = await read_body(request, c.settings.import_max_bytes)

    def work() -> dict[str, Any]:
        lines = io.StringIO(decode_text(body), newline="")
        return c.import_users(workspace_id, parse_rows(kind, lines)).wire()

    return JSONResponse(await in_thread(work), status_code=201)


ROUTES: list[BaseRoute] = [Route("/users/import", import_file, methods=["POST"])]

_FILE = {"type": "string", "pattern": "^[^\\x00]*$"}

OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        "/users/import",
        "Import users from a CSV or JSON lines file",
        "users",
        response=ImportResponse,
        status=201,
        errors=(400, 401, 403, 413, 415, 423),
        request_media={"text/csv": _FILE, "application/x-ndjson": _FILE},
        description=(
            "The body is the file. CSV: a header row naming the user by `external_id`, `braze_id` "
            "(updates only) or `user_alias_name` + `user_alias_label`; standard fields by name; every "
            "other column a custom attribute, typed per cell or as declared (`plan:string`); empty "
            "cells left unset. JSON lines: one `/users/track` attributes object per line. Users are "
            "created and updated with the `/users/track` rules, committed 5,000 rows at a time "
            "(1,000 on PostgreSQL). A bad row is counted and listed (first 100, with its line), never "
            "fatal; a file that is empty, not UTF-8 or without an identifier column is a 400 and "
            "nothing is written. Needs the `users.import` permission."
        ),
    ),
]
