"""The messaging API: Braze's send and export calls, campaign/Canvas management, tracking links.

Braze calls (`Authorization: Bearer KEY` with the permission named like the path):
`POST /campaigns/trigger/send` (also with a trailing slash, as braze-client posts it),
`/canvas/trigger/send`, `/messages/send`, `/sends/id/create`; `GET /campaigns/list`,
`/campaigns/details`, `/canvas/list`, `/canvas/details`. Management (`campaigns.write` /
`campaigns.read`): `/messaging/campaigns…` and `/messaging/canvases…`. Tracking links: `tracking.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api import messaging_wire as wire
from cohorthub.api import params
from cohorthub.api.cohorts import iso
from cohorthub.api.http import JSONResponse, api_key, container, in_thread, read_json
from cohorthub.api.openapi import Operation, Param
from cohorthub.bootstrap import Container
from cohorthub.errors import InvalidInput
from cohorthub.messaging import services, triggers
from cohorthub.messaging.dispatch import Item, Sender
from cohorthub.messaging.events import Source
from cohorthub.messaging.ports import Program, UserRow
from cohorthub.runtimes import default_channels, tracker_for
from cohorthub.segments.model import parse_time
from cohorthub.workspaces.services import authenticate_rest_key

ERRORS = (400, 401, 403, 404, 409, 413, 415)
#: The highest `page` of the Braze list exports (100 per page).
MAX_PAGE = 2**31 - 1
Work = Callable[[Container, str, Any, Request], Any]
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


def _endpoint(
    permission: str, work: Work, *, status: int = 200, body: bool = True
) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        c = container(request)
        payload = await read_json(request) if body else None
        key = api_key(request, payload)

        def run() -> Any:
            with c.uow(readonly=True) as uow:
                workspace_id = authenticate_rest_key(uow=uow, key=key, permission=permission).workspace_id
            return work(c, workspace_id, payload, request)

        return JSONResponse(await in_thread(run), status_code=status)

    return handle


def _idem(request: Request) -> str | None:
    return request.headers.get("idempotency-key") or None


def _trigger(fn: Callable[..., dict[str, Any]]) -> Work:
    def work(c: Container, ws: str, body: Any, request: Request) -> Any:
        with c.uow() as uow:
            return fn(uow=uow, workspace_id=ws, body=body, idempotency_key=_idem(request), now=c.now())

    return work


def _send_id(c: Container, ws: str, body: Any, _r: Request) -> Any:
    with c.uow(readonly=True) as uow:
        return triggers.create_send_id(uow=uow, workspace_id=ws, body=body)


def _export_list(kind: str) -> Work:
    def work(c: Container, ws: str, _b: Any, request: Request) -> Any:
        q = request.query_params
        page = params.integer(q, "page", default=0, low=0, high=MAX_PAGE)
        after = q.get("last_edit.time[gt]")
        with c.uow(readonly=True) as uow:
            programs = services.list_programs(
                uow=uow, workspace_id=ws, kind=kind, include_archived=q.get("include_archived") == "true"
            )
        chosen = triggers.export_list(
            programs,
            page=page,
            descending=q.get("sort_direction") == "desc",
            edited_after=parse_time(after) if after else None,
        )
        rows = [
            {"id": p.id, "last_edited": iso(p.updated_at), "name": p.name, "tags": p.spec.get("tags", [])}
            for p in chosen
        ]
        if kind == "campaign":
            for row, p in zip(rows, chosen, strict=True):
                row["is_api_campaign"] = p.spec.get("delivery", {}).get("type") == "api"
            return {"message": "success", "campaigns": rows}
        return {"canvases": rows, "message": "success"}

    return work


def _conversion_behavior(conversion: dict[str, Any]) -> dict[str, Any]:
    """Braze's `conversion_behaviors` entry for a campaign's conversion (a custom event or a purchase)."""
    window = conversion.get("window_seconds", 259200)
    product = conversion.get("purchase")
    if product is None:
        return {"type": "Performs Custom Event", "custom_event_name": conversion["event"], "window": window}
    if product == "*":
        return {"type": "Makes Any Purchase", "window": window}
    return {"type": "Makes Specific Purchase", "product": product, "window": window}


def _message_details(channel: str, message: dict[str, Any]) -> dict[str, Any]:
    if channel == "email":
        return {
            "channel": "email",
            "name": "Variant 1",
            "subject": message.get("subject"),
            "body": message.get("body"),
            "from": message.get("from"),
            "reply_to": message.get("reply_to"),
            "custom_plain_text": message.get("plaintext_body"),
            "email_headers": message.get("headers", {}),
            "preheader": None,
            "title": None,
            "amp_body": None,
            "should_inline_css": False,
            "should_whitespace_header": False,
            "extras": {},
        }
    return {
        "channel": "webhook",
        "name": "Variant 1",
        "url": message.get("url"),
        "body": message.get("body"),
        "type": "raw_text",
        "headers": message.get("request_headers", {}),
        "method": message.get("request_method", "POST"),
    }


def _details(kind: str) -> Work:
    def work(c: Container, ws: str, _b: Any, request: Request) -> Any:
        with c.uow(readonly=True) as uow:
            p = triggers.program_or_404(uow, ws, request.query_params.get(f"{kind}_id"), kind)
        spec = p.spec
        common = {
            "message": "success",
            "created_at": iso(p.created_at),
            "updated_at": iso(p.updated_at),
            "archived": p.status == "archived",
            "draft": p.status == "draft",
            "enabled": p.status == "active",
            "has_post_launch_draft": False,
            "name": p.name,
            "description": spec.get("description", ""),
            "tags": spec.get("tags", []),
            "teams": [],
        }
        if kind == "campaign":
            channel = spec["channel"]
            conversion = spec.get("conversion")
            return {
                **common,
                "schedule_type": spec.get("delivery", {}).get("type", "api"),
                "channels": [channel],
                "first_sent": iso(p.first_sent_at),
                "last_sent": iso(p.last_sent_at),
                "conversion_behaviors": [_conversion_behavior(conversion)] if conversion else [],
                "messages": {spec["message_variation_id"]: _message_details(channel, spec.get(channel, {}))},
            }
        canvas = services.canvas_spec(p)
        steps = []
        for step in canvas.steps.values():
            raw = next(s for s in spec["steps"] if s.get("id") == step.id)
            messages = (
                {step.message_variation_id: _message_details(step.channel, raw.get(step.channel, {}))}
                if step.channel
                else {}
            )
            steps.append(
                {
                    "name": step.name,
                    "type": step.type,
                    "id": step.id,
                    "next_step_ids": step.successors(),
                    "next_paths": [{"name": n, "next_step_id": n} for n in step.successors()],
                    "channels": [step.channel] if step.channel else [],
                    "messages": messages,
                }
            )
        return {
            **common,
            "schedule_type": canvas.entry.type,
            "first_entry": iso(p.first_sent_at),
            "last_entry": iso(p.last_sent_at),
            "channels": canvas.channels(),
            "variants": [
                {
                    "name": "Variant 1",
                    "id": canvas.variation_id,
                    "first_step_ids": [canvas.first_step],
                    "first_step_id": canvas.first_step,
                }
            ],
            "steps": steps,
        }

    return work


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


def _update(c: Container, ws: str, body: Any, request: Request) -> Any:
    _get(c, ws, None, request)
    with c.uow() as uow:
        return program_json(
            services.update_program(
                uow=uow, workspace_id=ws, program_id=request.path_params["id"], raw=body, now=c.now()
            )
        )


def _action(fn: Callable[..., Program]) -> Work:
    def work(c: Container, ws: str, _b: Any, request: Request) -> Any:
        _get(c, ws, None, request)
        with c.uow() as uow:
            return program_json(
                fn(uow=uow, workspace_id=ws, program_id=request.path_params["id"], now=c.now())
            )

    return work


def _preview(c: Container, ws: str, body: Any, request: Request) -> Any:
    body = body if isinstance(body, dict) else {}
    with c.uow(readonly=True) as uow:
        p = services.preview_campaign(
            uow=uow,
            indexes=c.segments,
            membership=c.membership,
            workspace_id=ws,
            program_id=request.path_params["id"],
            external_id=body.get("external_id"),
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
    with c.uow(readonly=True) as uow:
        program = services.get_program(
            uow=uow, workspace_id=ws, program_id=request.path_params["id"], kind="campaign"
        )
        spec = services.campaign_spec(program)
        user = UserRow(0, "", None, body["address"], None, None, {}, {})
        if external := body.get("external_id"):
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


def _braze(path: str, permission: str, work: Work, *, status: int = 201, method: str = "POST") -> list[Route]:
    handler = _endpoint(permission, work, status=status, body=method == "POST")
    return [Route(path, handler, methods=[method]), Route(path + "/", handler, methods=[method])]


def _management(plural: str) -> list[Route]:
    base = f"/messaging/{plural}"
    read, write = "campaigns.read", "campaigns.write"
    routes = [
        Route(base, _endpoint(write, _create, status=201), methods=["POST"]),
        Route(base, _endpoint(read, _list, body=False), methods=["GET"]),
        Route(base + "/{id}", _endpoint(read, _get, body=False), methods=["GET"]),
        Route(base + "/{id}", _endpoint(write, _update), methods=["PUT"]),
        Route(base + "/{id}/stats", _endpoint(read, _stats, body=False), methods=["GET"]),
    ]
    for name, fn in (
        ("launch", services.launch_program),
        ("pause", services.pause_program),
        ("resume", services.resume_program),
        ("archive", services.archive_program),
    ):
        routes.append(
            Route(f"{base}/{{id}}/{name}", _endpoint(write, _action(fn), body=False), methods=["POST"])
        )
    if plural == "campaigns":
        routes.append(Route(base + "/{id}/preview", _endpoint(read, _preview), methods=["POST"]))
        routes.append(Route(base + "/{id}/test-send", _endpoint(write, _test_send), methods=["POST"]))
    return routes


ROUTES: list[BaseRoute] = [
    *_braze("/campaigns/trigger/send", "campaigns.trigger.send", _trigger(triggers.trigger_campaign)),
    *_braze("/canvas/trigger/send", "canvas.trigger.send", _trigger(triggers.trigger_canvas)),
    *_braze("/messages/send", "messages.send", _trigger(triggers.send_messages)),
    *_braze("/sends/id/create", "sends.id.create", _send_id),
    *_braze("/campaigns/list", "campaigns.list", _export_list("campaign"), status=200, method="GET"),
    *_braze("/campaigns/details", "campaigns.details", _details("campaign"), status=200, method="GET"),
    *_braze("/canvas/list", "canvas.list", _export_list("canvas"), status=200, method="GET"),
    *_braze("/canvas/details", "canvas.details", _details("canvas"), status=200, method="GET"),
    *_management("campaigns"),
    *_management("canvases"),
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
        "/campaigns/trigger/send",
        "Send an API-triggered campaign",
        "messaging",
        request=wire.CampaignTrigger,
        response=wire.Dispatched,
        status=201,
        errors=ERRORS,
        description="Also at `/campaigns/trigger/send/`. Unknown recipients are skipped and listed in "
        "`errors`; a repeated call (same `Idempotency-Key`, or the same body within 10 minutes) returns "
        "the first `dispatch_id` and sends nothing more.",
    ),
    Operation(
        "POST",
        "/canvas/trigger/send",
        "Enter users into an API-triggered Canvas",
        "messaging",
        request=wire.CanvasTrigger,
        response=wire.Dispatched,
        status=201,
        errors=ERRORS,
    ),
    Operation(
        "POST",
        "/messages/send",
        "Send an e-mail or webhook given in the request",
        "messaging",
        request=wire.MessagesSend,
        response=wire.Dispatched,
        status=201,
        errors=ERRORS,
    ),
    Operation(
        "POST",
        "/sends/id/create",
        "Create a send id for an API campaign",
        "messaging",
        request=wire.SendIdCreate,
        response=wire.SendIdCreated,
        status=201,
        errors=ERRORS,
    ),
    Operation(
        "GET",
        "/campaigns/list",
        "List campaigns (Braze export shape)",
        "messaging",
        errors=ERRORS,
        query=(
            Param("page", "Page of 100, from 0", params.integer_schema(0, MAX_PAGE)),
            ("include_archived", "true|false"),
            ("sort_direction", "asc|desc"),
        ),
    ),
    Operation(
        "GET",
        "/campaigns/details",
        "A campaign (Braze export shape)",
        "messaging",
        errors=ERRORS,
        query=(("campaign_id", "the campaign"),),
    ),
    Operation("GET", "/canvas/list", "List Canvases (Braze export shape)", "messaging", errors=ERRORS),
    Operation(
        "GET",
        "/canvas/details",
        "A Canvas (Braze export shape)",
        "messaging",
        errors=ERRORS,
        query=(("canvas_id", "the Canvas"),),
    ),
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
]
