"""Campaign and Canvas management: `/messaging/campaigns…` and `/messaging/canvases…`.

Create, list, read, replace, launch, pause, resume, archive and statistics for both; preview and test
send for campaigns. `campaigns.write` changes, `campaigns.read` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api import messaging_wire as wire
from cohorthub.api.cohorts import iso
from cohorthub.api.http import JSONResponse, api_key, container, in_thread, read_body
from cohorthub.api.messaging import ERRORS, Work, endpoint
from cohorthub.api.openapi import Operation
from cohorthub.bootstrap import Container
from cohorthub.errors import InvalidInput
from cohorthub.messaging import bounces, services
from cohorthub.messaging.dispatch import Sender
from cohorthub.messaging.events import Source
from cohorthub.messaging.outgoing import Item
from cohorthub.messaging.ports import MessagingUnitOfWork, Program, UserRow
from cohorthub.runtimes import default_channels, tracker_for
from cohorthub.text import storable_problem
from cohorthub.workspaces.services import authenticate_rest_key

#: The largest DSN the bounce endpoint reads (a report quotes the original message, usually in part).
MAX_DSN_BYTES = 4 * 1024 * 1024

KIND_OF = {"campaigns": "campaign", "canvases": "canvas"}


def program_json(p: Program) -> dict[str, Any]:
    """A campaign or Canvas on the wire."""
    return {
        "id": p.id,
        "kind": p.kind,
        "name": p.name,
        "status": p.status,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
        "first_sent_at": iso(p.first_sent_at),
        "last_sent_at": iso(p.last_sent_at),
        "definition": p.spec,
    }


def _kind(request: Request) -> str:
    return KIND_OF[request.url.path.split("/")[2]]


def _create(c: Container, ws: str, body: Any, request: Request) -> Any:
    with c.uow() as uow:
        return program_json(
            services.create_program(uow=uow, workspace_id=ws, kind=_kind(request), raw=body, now=c.now())
        )


def _list(c: Container, ws: str, _b: Any, request: Request) -> Any:
    with c.uow(readonly=True) as uow:
        items = services.list_programs(
            uow=uow,
            workspace_id=ws,
            kind=_kind(request),
            include_archived=request.query_params.get("include_archived") == "true",
        )
    return {"items": [program_json(p) for p in items], "message": "success"}


def _get(c: Container, ws: str, _b: Any, request: Request) -> Any:
    with c.uow(readonly=True) as uow:
        return program_json(
            services.get_program(
                uow=uow, workspace_id=ws, program_id=request.path_params["id"], kind=_kind(request)
            )
        )


def _require_kind(uow: MessagingUnitOfWork, ws: str, request: Request) -> None:
    """The path's kind matches the program's (404 otherwise), read in the caller's transaction."""
    services.get_program(uow=uow, workspace_id=ws, program_id=request.path_params["id"], kind=_kind(request))


def _update(c: Container, ws: str, body: Any, request: Request) -> Any:
    with c.uow() as uow:
        _require_kind(uow, ws, request)
        return program_json(
            services.update_program(
                uow=uow, workspace_id=ws, program_id=request.path_params["id"], raw=body, now=c.now()
            )
        )


def _action(fn: Callable[..., Program]) -> Work:
    def work(c: Container, ws: str, _b: Any, request: Request) -> Any:
        with c.uow() as uow:
            _require_kind(uow, ws, request)
            return program_json(
                fn(uow=uow, workspace_id=ws, program_id=request.path_params["id"], now=c.now())
            )

    return work


def _external_id(body: dict[str, Any]) -> str | None:
    """The body's `external_id`: absent, or a string a store can look up (400 otherwise)."""
    value = body.get("external_id")
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("external_id must be a string")
    if problem := storable_problem(value):
        raise InvalidInput(f"external_id {problem}")
    return value


def _preview(c: Container, ws: str, body: Any, request: Request) -> Any:
    body = body if isinstance(body, dict) else {}
    external_id = _external_id(body)
    if not isinstance(body.get("trigger_properties"), dict | None):
        raise InvalidInput("trigger_properties must be an object")
    with c.uow(readonly=True) as uow:
        p = services.preview_campaign(
            uow=uow,
            indexes=c.segments,
            membership=c.membership,
            workspace_id=ws,
            program_id=request.path_params["id"],
            external_id=external_id,
            trigger_properties=body.get("trigger_properties"),
            now=c.now(),
        )
    return {
        "size": p.size,
        "reachable": p.reachable,
        "sample": p.sample,
        "rendered": p.rendered,
        "render_error": p.render_error,
        "message": "success",
    }


def _stats(c: Container, ws: str, _b: Any, request: Request) -> Any:
    with c.uow(readonly=True) as uow:
        return {
            **services.program_stats(uow=uow, workspace_id=ws, program_id=request.path_params["id"]),
            "message": "success",
        }


def _test_send(c: Container, ws: str, body: Any, request: Request) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("address"), str):
        raise InvalidInput("address is required")
    external = _external_id(body)
    with c.uow(readonly=True) as uow:
        program = services.get_program(
            uow=uow, workspace_id=ws, program_id=request.path_params["id"], kind="campaign"
        )
        spec = services.campaign_spec(program)
        user = UserRow(0, "", None, body["address"], None, None, {}, {})
        if external:
            nums = uow.messaging.facts.nums_by_external_ids(ws, [external])
            if external not in nums:
                raise InvalidInput(f"No user with external_id {external}")
            user = uow.messaging.facts.users(ws, [nums[external]])[0]
    runtime = c.extras.get("messaging")
    channels = runtime.channels if runtime is not None else default_channels(c)
    sender = Sender(uow=c.uow, channels=channels, tracker=lambda: tracker_for(c), now=c.now)
    item = Item(
        Source(ws, campaign_id=program.id, campaign_name=program.name),
        user,
        "test",
        spec.message,
        values={"campaign": {"api_id": program.id, "name": program.name}},
    )
    try:
        outcome = sender.test_send(item, body["address"])
    finally:
        if runtime is None:
            channels.email.close()
            channels.webhook.close()
    return {"state": outcome.state, "detail": outcome.detail, "message": "success"}


def _management(plural: str) -> list[Route]:
    base = f"/messaging/{plural}"
    read, write = "campaigns.read", "campaigns.write"
    routes = [
        Route(base, endpoint(write, _create, status=201), methods=["POST"]),
        Route(base, endpoint(read, _list, body=False), methods=["GET"]),
        Route(base + "/{id}", endpoint(read, _get, body=False), methods=["GET"]),
        Route(base + "/{id}", endpoint(write, _update), methods=["PUT"]),
        Route(base + "/{id}/stats", endpoint(read, _stats, body=False), methods=["GET"]),
    ]
    for name, fn in (
        ("launch", services.launch_program),
        ("pause", services.pause_program),
        ("resume", services.resume_program),
        ("archive", services.archive_program),
    ):
        routes.append(
            Route(f"{base}/{{id}}/{name}", endpoint(write, _action(fn), body=False), methods=["POST"])
        )
    if plural == "campaigns":
        routes.append(Route(base + "/{id}/preview", endpoint(read, _preview), methods=["POST"]))
        routes.append(Route(base + "/{id}/test-send", endpoint(write, _test_send), methods=["POST"]))
    return routes


async def _bounce(request: Request) -> Response:
    """A DSN (the raw message) received by a mail system and handed over: recorded or ignored."""
    c = container(request)
    key = api_key(request, None)

    def workspace() -> str:
        with c.uow(readonly=True) as uow:
            return authenticate_rest_key(uow=uow, key=key, permission="campaigns.write").workspace_id

    ws = await in_thread(workspace)
    raw = await read_body(request, MAX_DSN_BYTES)
    if not raw.strip():
        raise InvalidInput("Request body is empty: the bounce message (a DSN, RFC 3464) is expected")
    recipient = request.query_params.get("recipient", "").strip()

    def record() -> dict[str, Any]:
        tracker = tracker_for(c)
        with c.uow() as uow:
            result = bounces.record_bounce(
                uow=uow, tracker=tracker, raw=raw, recipients=[recipient] if recipient else [],
                now=c.now(), workspace_id=ws,
            )  # fmt: skip
        return {"outcome": result.outcome, "reason": result.reason, "message": "success"}

    return JSONResponse(await in_thread(record))


ROUTES: list[BaseRoute] = [
    *_management("campaigns"),
    *_management("canvases"),
    Route("/messaging/bounces", _bounce, methods=["POST"]),
]


def _management_operations(kind: str) -> list[Operation]:
    """The per-program routes of `/messaging/campaigns` or `/messaging/canvases`."""
    base = "/messaging/campaigns/{id}" if kind == "campaign" else "/messaging/canvases/{id}"
    name = "campaign" if kind == "campaign" else "Canvas"
    ident = {"id": f"The {name}'s id"}
    ops = [
        Operation(
            "GET", base, f"A {name}", "messaging", response=wire.Program, errors=ERRORS, path_params=ident
        ),
        Operation(
            "PUT",
            base,
            f"Replace a {name}'s definition (drafts and paused programs)",
            "messaging",
            response=wire.Program,
            errors=ERRORS,
            path_params=ident,
        ),
        Operation(
            "GET", base + "/stats", f"{name} statistics", "messaging", errors=ERRORS, path_params=ident
        ),
    ]
    for action in ("launch", "pause", "resume", "archive"):
        summary, path = f"{action.capitalize()} a {name}", f"{base}/{action}"
        ops.append(Operation("POST", path, summary, "messaging", errors=ERRORS, path_params=ident))
    return ops


OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        "/messaging/campaigns",
        "Create a campaign (draft)",
        "messaging",
        response=wire.Program,
        status=201,
        errors=ERRORS,
        description="The definition is documented in docs/messaging.md.",
    ),
    Operation(
        "GET", "/messaging/campaigns", "List campaigns", "messaging", response=wire.ProgramList, errors=ERRORS
    ),
    Operation(
        "POST",
        "/messaging/campaigns/{id}/preview",
        "Audience size now, a sample, the rendered message",
        "messaging",
        response=wire.Preview,
        errors=ERRORS,
    ),
    Operation(
        "POST",
        "/messaging/campaigns/{id}/test-send",
        "Send the message to one address",
        "messaging",
        request=wire.TestSend,
        errors=ERRORS,
    ),
    Operation(
        "POST",
        "/messaging/canvases",
        "Create a Canvas (draft)",
        "messaging",
        response=wire.Program,
        status=201,
        errors=ERRORS,
    ),
    Operation(
        "GET", "/messaging/canvases", "List Canvases", "messaging", response=wire.ProgramList, errors=ERRORS
    ),
    *(op for kind in ("campaign", "canvas") for op in _management_operations(kind)),
    Operation(
        "POST",
        "/messaging/bounces",
        "Hand over a bounce (a delivery status notification, RFC 3464)",
        "messaging",
        errors=(400, 401, 403, 413),
        query=(("recipient", "the address the DSN was sent to, when its headers do not say it"),),
        request_media={"text/plain": {"type": "string"}},
        description="The body is the raw DSN as received (any content type, e.g. `message/rfc822`). "
        "It is matched to its message by the return "
        "path it was sent to (`recipient`, else its `Delivered-To`, `X-Original-To`, `Envelope-To` or "
        "`To` header), which carries the message's signed ledger id. A permanent failure records a "
        "Bounce (later sends skip the address), a transient one a SoftBounce, a delay a Deferral; "
        'anything else is ignored and counted. 200 `{"outcome": "bounced"|"soft_bounced"|'
        '"deferred"|"ignored", "reason"}`.',
    ),
]
