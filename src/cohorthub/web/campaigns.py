"""Campaigns and Canvases: target users by segment, content with a Liquid preview for a chosen user,
delivery schedule, audience preview, test send, launch/pause, per-step statistics, the Canvas flow."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api.http import in_thread
from cohorthub.messaging import services as messaging
from cohorthub.messaging.audience import audience_filter
from cohorthub.messaging.dispatch import Sender
from cohorthub.messaging.errors import InvalidProgram
from cohorthub.messaging.events import Source
from cohorthub.messaging.liquid import MessageAborted, RenderFailed
from cohorthub.messaging.model import WebhookContent
from cohorthub.messaging.outgoing import Item
from cohorthub.messaging.ports import Program, UserRow
from cohorthub.runtimes import default_channels, tracker_for
from cohorthub.segments import services as segments
from cohorthub.segments.model import parse_time
from cohorthub.web.canvas_form import message_from_form
from cohorthub.web.canvases import canvas_values
from cohorthub.web.context import Ctx, PageNotFound, form_fields, page, redirect, render

SAMPLE = 10
ACTIONS = {
    "launch": messaging.launch_program,
    "pause": messaging.pause_program,
    "resume": messaging.resume_program,
    "archive": messaging.archive_program,
}


@page("read")
async def campaign_list(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/campaigns`: campaigns and Canvases with their state."""

    def run() -> dict[str, list[Program]]:
        with ctx.c.uow(readonly=True) as uow:
            return {kind: messaging.list_programs(uow=uow, workspace_id=ctx.workspace_id, kind=kind)
                    for kind in ("campaign", "canvas")}  # fmt: skip

    programs = await in_thread(run)
    return render(ctx, "campaigns.html", title=ctx.gettext("Campaigns"), nav="campaigns",
                  campaign=programs["campaign"], canvas=programs["canvas"])  # fmt: skip


def _segments(ctx: Ctx) -> list[Any]:
    with ctx.c.uow(readonly=True) as uow:
        return segments.list_segments(uow=uow, workspace_id=ctx.workspace_id, include_archived=False)


@page("write")
async def new_campaign(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/campaigns/new`: the campaign form (e-mail or webhook)."""
    return await _campaign_form(ctx, {"channel": "email", "from": "Acme <news@acme.io>"}, "", 200)


async def _campaign_form(ctx: Ctx, fields: dict[str, str], message: str, status: int) -> Response:
    found = await in_thread(lambda: _segments(ctx))
    return render(ctx, "campaign_new.html", status=status, title=ctx.gettext("New campaign"), nav="campaigns",
                  segments=found, f=fields, message=message)  # fmt: skip


def _definition(ctx: Ctx, fields: dict[str, str]) -> dict[str, Any]:
    when = fields.get("time", "")
    try:
        at = parse_time(when) if when else ctx.c.now()
    except ValueError:
        raise InvalidProgram("delivery.time", f"not a date and time: {when!r}") from None
    return {
        "name": fields.get("name", ""),
        "audience": {"segment_ids": [fields["segment_id"]] if fields.get("segment_id") else []},
        **message_from_form(fields),
        "delivery": {"type": "scheduled", "time": at},
    }


@page("write")
async def create_campaign(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/campaigns`: a draft campaign; a refused one comes back with the error (400)."""
    fields = form_fields(ctx)

    def run() -> Program:
        with ctx.c.uow() as uow:
            return messaging.create_program(uow=uow, workspace_id=ctx.workspace_id, kind="campaign",
                                            raw=_definition(ctx, fields), now=ctx.c.now())  # fmt: skip

    try:
        program = await in_thread(run)
    except InvalidProgram as exc:
        return await _campaign_form(ctx, fields, exc.message, 400)
    return redirect(f"/campaigns/{program.id}")


def _details(ctx: Ctx, program_id: str) -> dict[str, Any]:
    with ctx.c.uow(readonly=True) as uow:
        program = messaging.get_program(uow=uow, workspace_id=ctx.workspace_id, program_id=program_id)
        if program.kind == "canvas":
            return canvas_values(ctx, uow, program)
        stats = messaging.program_stats(uow=uow, workspace_id=ctx.workspace_id, program_id=program_id)
        spec = messaging.campaign_spec(program)
        members = messaging.audience_members(
            uow=uow, indexes=ctx.c.segments, membership=ctx.c.membership, workspace_id=ctx.workspace_id,
            raw_filter=audience_filter(spec.audience), now=ctx.c.now(),
        )  # fmt: skip
        return {"program": program, "stats": stats, "canvas": None, "audience": len(members),
                "channel": spec.channel}  # fmt: skip


@page("read")
async def campaign_page(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/campaigns/{id}`: exact audience size, stats, actions; the preview loads after."""
    program_id = request.path_params["program_id"]
    values = await in_thread(lambda: _details(ctx, program_id))
    return render(ctx, "campaign.html", title=values["program"].name, nav="campaigns", notice="", **values)


def _quick_preview(ctx: Ctx, program_id: str, external_id: str | None) -> messaging.Preview:
    """A sample of the audience and the message for one user, without reading every member."""
    workspace_id = ctx.workspace_id
    with ctx.c.uow(readonly=True) as uow:
        program = messaging.get_program(uow=uow, workspace_id=workspace_id, program_id=program_id,
                                        kind="campaign")  # fmt: skip
        spec = messaging.campaign_spec(program)
        members = messaging.audience_members(
            uow=uow, indexes=ctx.c.segments, membership=ctx.c.membership, workspace_id=workspace_id,
            raw_filter=audience_filter(spec.audience), now=ctx.c.now(),
        )  # fmt: skip
        facts = uow.messaging.facts
        sample = facts.users(workspace_id, [n for n, _ in zip(members, range(SAMPLE), strict=False)])
        target = sample[0] if sample else None
        if external_id is not None:
            found = facts.nums_by_external_ids(workspace_id, [external_id])
            if external_id not in found:
                raise PageNotFound(f"No user with external_id {external_id}")
            target = facts.users(workspace_id, [found[external_id]])[0]
    names = [u.external_id or u.braze_id for u in sample]
    if target is None:
        return messaging.Preview(len(members), -1, names)
    try:
        rendered = messaging.render_preview(spec, program, target, {})
    except (MessageAborted, RenderFailed) as exc:
        return messaging.Preview(len(members), -1, names, render_error=str(exc))
    return messaging.Preview(len(members), -1, names, rendered)


@page("read")
async def preview(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/campaigns/{id}/preview?external_id=&count=`: a sample and the message for a user.

    With `count=1` it also counts the users reachable by e-mail, which reads every member of the audience.
    """
    program_id = request.path_params["program_id"]
    external_id = request.query_params.get("external_id") or None

    def run() -> messaging.Preview:
        if request.query_params.get("count") != "1":
            return _quick_preview(ctx, program_id, external_id)
        with ctx.c.uow(readonly=True) as uow:
            return messaging.preview_campaign(
                uow=uow, indexes=ctx.c.segments, membership=ctx.c.membership, workspace_id=ctx.workspace_id,
                program_id=program_id, external_id=external_id, now=ctx.c.now(),
            )  # fmt: skip

    found = await in_thread(run)
    channel, method = await in_thread(lambda: _channel(ctx, program_id))
    return render(ctx, "campaign_preview.html", preview=found, program_id=program_id,
                  external_id=external_id or "", channel=channel, method=method)  # fmt: skip


def _channel(ctx: Ctx, program_id: str) -> tuple[str, str]:
    """The campaign's channel and, for a webhook, its HTTP method."""
    with ctx.c.uow(readonly=True) as uow:
        program = messaging.get_program(uow=uow, workspace_id=ctx.workspace_id, program_id=program_id)
    message = messaging.campaign_spec(program).message
    return ("webhook", message.method) if isinstance(message, WebhookContent) else ("email", "")


@page("write")
async def campaign_action(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/campaigns/{id}/{launch|pause|resume|archive}`."""
    program_id, name = request.path_params["program_id"], request.path_params["action"]
    if name not in ACTIONS:
        raise PageNotFound(f"No campaign action {name}")

    def run() -> None:
        with ctx.c.uow() as uow:
            ACTIONS[name](uow=uow, workspace_id=ctx.workspace_id, program_id=program_id, now=ctx.c.now())

    await in_thread(run)
    return redirect(f"/campaigns/{program_id}")


def _test_send(ctx: Ctx, program_id: str, address: str, external_id: str) -> str:
    c = ctx.c
    user = UserRow(0, "", None, address, None, None, {}, {})
    with c.uow(readonly=True) as uow:
        program = messaging.get_program(uow=uow, workspace_id=ctx.workspace_id, program_id=program_id,
                                        kind="campaign")  # fmt: skip
        spec = messaging.campaign_spec(program)
        if external_id:
            found = uow.messaging.facts.nums_by_external_ids(ctx.workspace_id, [external_id])
            if external_id not in found:
                raise PageNotFound(f"No user with external_id {external_id}")
            user = uow.messaging.facts.users(ctx.workspace_id, [found[external_id]])[0]
    runtime = c.extras.get("messaging")
    channels = runtime.channels if runtime is not None else default_channels(c)
    sender = Sender(uow=c.uow, channels=channels, tracker=lambda: tracker_for(c), now=c.now)
    item = Item(
        Source(ctx.workspace_id, campaign_id=program.id, campaign_name=program.name),
        user,
        "test",
        spec.message,
        values={"campaign": {"api_id": program.id, "name": program.name}},
    )
    outcome = sender.test_send(item, address)
    return f"{outcome.state}: {outcome.detail}" if outcome.detail else str(outcome.state)


@page("write")
async def test_send(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/campaigns/{id}/test-send`: send the message to one address now."""
    program_id = request.path_params["program_id"]
    address, external_id = ctx.field("address"), ctx.field("external_id").strip()
    outcome = await in_thread(lambda: _test_send(ctx, program_id, address, external_id))
    values = await in_thread(lambda: _details(ctx, program_id))
    notice = ctx.gettext("Test send: %(outcome)s") % {"outcome": outcome}
    return render(
        ctx, "campaign.html", title=values["program"].name, nav="campaigns", notice=notice, **values
    )


ROUTES: list[BaseRoute] = [
    Route("/campaigns", campaign_list, methods=["GET"]),
    Route("/campaigns", create_campaign, methods=["POST"]),
    Route("/campaigns/new", new_campaign, methods=["GET"]),
    Route("/campaigns/{program_id}", campaign_page, methods=["GET"]),
    Route("/campaigns/{program_id}/preview", preview, methods=["GET"]),
    Route("/campaigns/{program_id}/test-send", test_send, methods=["POST"]),
    Route("/campaigns/{program_id}/{action}", campaign_action, methods=["POST"]),
]
