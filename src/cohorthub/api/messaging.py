"""Braze's messaging calls: sends and exports (`Authorization: Bearer KEY`, permission named like the path).

`POST /campaigns/trigger/send` (also with a trailing slash, as braze-client posts it),
`/canvas/trigger/send`, `/messages/send`, `/sends/id/create`; `GET /campaigns/list`,
`/campaigns/details`, `/canvas/list`, `/canvas/details`. Campaign and Canvas management:
`programs.py`. Tracking links: `tracking.py`.
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
from cohorthub.messaging import services, triggers
from cohorthub.segments.model import parse_time
from cohorthub.workspaces.services import authenticate_rest_key

ERRORS = (400, 401, 403, 404, 409, 413, 415)
#: The highest `page` of the Braze list exports (100 per page).
MAX_PAGE = 2**31 - 1
Work = Callable[[Container, str, Any, Request], Any]


def endpoint(
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


def _schedule_change(fn: Callable[..., dict[str, Any]], kind: str) -> Work:
    def work(c: Container, ws: str, body: Any, _r: Request) -> Any:
        with c.uow() as uow:
            if fn is triggers.update_schedule:
                return fn(uow=uow, workspace_id=ws, body=body, kind=kind, now=c.now())
            return fn(uow=uow, workspace_id=ws, body=body, kind=kind)

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


def _braze(path: str, permission: str, work: Work, *, status: int = 201, method: str = "POST") -> list[Route]:
    handler = endpoint(permission, work, status=status, body=method == "POST")
    return [Route(path, handler, methods=[method]), Route(path + "/", handler, methods=[method])]


ROUTES: list[BaseRoute] = [
    *_braze("/campaigns/trigger/send", "campaigns.trigger.send", _trigger(triggers.trigger_campaign)),
    *_braze("/canvas/trigger/send", "canvas.trigger.send", _trigger(triggers.trigger_canvas)),
    *_braze("/messages/send", "messages.send", _trigger(triggers.send_messages)),
    *(
        route
        for base, kind, create in (
            ("campaigns", "campaign", triggers.schedule_campaign),
            ("canvas", "canvas", triggers.schedule_canvas),
        )
        for action, work in (
            ("create", _trigger(create)),
            ("update", _schedule_change(triggers.update_schedule, kind)),
            ("delete", _schedule_change(triggers.delete_schedule, kind)),
        )
        for route in _braze(f"/{base}/trigger/schedule/{action}", f"{base}.trigger.send", work)
    ),
    *_braze("/sends/id/create", "sends.id.create", _send_id),
    *_braze("/campaigns/list", "campaigns.list", _export_list("campaign"), status=200, method="GET"),
    *_braze("/campaigns/details", "campaigns.details", _details("campaign"), status=200, method="GET"),
    *_braze("/canvas/list", "canvas.list", _export_list("canvas"), status=200, method="GET"),
    *_braze("/canvas/details", "canvas.details", _details("canvas"), status=200, method="GET"),
]


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
    *(
        Operation(
            "POST",
            f"/{base}/trigger/schedule/{action}",
            summary,
            "messaging",
            response=wire.Dispatched if action == "create" else None,
            status=201,
            errors=ERRORS,
            description=description,
        )
        for base, name in (("campaigns", "campaign"), ("canvas", "Canvas"))
        for action, summary, description in (
            (
                "create",
                f"Schedule an API-triggered {name} call",
                'The trigger call\'s fields and `schedule` (`{"time"}`: ISO 8601, UTC when no offset; '
                "`in_local_time` and `at_optimal_time` are not supported). The answer adds `schedule_id` "
                "(the dispatch id).",
            ),
            ("update", f"Move a scheduled {name} call", "`schedule_id` and a new `schedule`; 404 once sent."),
            ("delete", f"Cancel a scheduled {name} call", "`schedule_id`; 404 once sent or cancelled."),
        )
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
]
