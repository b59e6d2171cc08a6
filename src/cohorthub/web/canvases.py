"""The Canvas editor: create a Canvas, change its entry, add, edit and remove steps, name and exit criteria.

Every change rebuilds the whole definition (`canvas_form`) and saves it with the messaging service
`update_program` (or `create_program`), which refuses cycles, unreachable steps and Liquid that does
not parse: the page comes back with the service's error next to the form that was sent (400) and the
fields as they were typed; nothing is saved. A form carries the version of the Canvas it was built
from, so a change made meanwhile by someone else is not silently overwritten (409).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.api.http import in_thread
from cohorthub.cohorts.services import list_cohorts
from cohorthub.errors import Conflict
from cohorthub.messaging import services as messaging
from cohorthub.messaging.errors import InvalidProgram
from cohorthub.messaging.ports import Program
from cohorthub.segments import services as segments
from cohorthub.web import canvas_form as cf
from cohorthub.web.context import Ctx, form_fields, page, redirect, render

if TYPE_CHECKING:
    from cohorthub.store.uow import SqlUnitOfWork

ENTRY_TYPES = ("cohort", "segment", "event", "api", "schedule")
STEP_TYPES = ("message", "delay", "audience_split", "decision_split")


class StaleForm(Conflict):
    """The Canvas changed after the form was loaded."""


def _choices(ctx: Ctx, uow: SqlUnitOfWork) -> dict[str, Any]:
    """What the editor's selects offer: segments and partner cohorts."""
    return {
        "segments": segments.list_segments(uow=uow, workspace_id=ctx.workspace_id, include_archived=False),
        "cohorts": list_cohorts(uow=uow, workspace_id=ctx.workspace_id, partner=None),
    }


def canvas_values(ctx: Ctx, uow: SqlUnitOfWork, program: Program) -> dict[str, Any]:
    """Everything the Canvas page shows: flow, per-step statistics, the editor's forms."""
    definition, spec = program.spec, messaging.canvas_spec(program)
    choices = _choices(ctx, uow)
    stats = messaging.program_stats(uow=uow, workspace_id=ctx.workspace_id, program_id=program.id)
    return {
        "program": program,
        "stats": stats,
        "canvas": spec,
        "audience": None,
        "version": repr(program.updated_at),
        "step_fields_by_id": {s["id"]: cf.fields_of_step(s) for s in cf.steps_of(definition)},
        "entry_fields_values": cf.fields_of_entry(definition.get("entry") or {}),
        "step_list": [(s.id, s.name) for s in spec.steps.values()],
        "positions": cf.positions(definition),
        "exit_events": ", ".join((definition.get("exit") or {}).get("events") or []),
        "settings_fields": cf.fields_of_settings(definition),
        **choices,
        "segment_names": {s.id: s.name for s in choices["segments"]},
    }


async def _change(
    request: Request, ctx: Ctx, where: str, change: Callable[[cf.Definition, dict[str, str]], cf.Definition]
) -> Response:
    """Apply `change` to the stored definition and save it; on refusal, the page with the error at `where`."""
    program_id = request.path_params["program_id"]
    form = form_fields(ctx)

    def run() -> tuple[Program | None, str]:
        with ctx.c.uow() as uow:
            program = messaging.get_program(uow=uow, workspace_id=ctx.workspace_id, program_id=program_id,
                                            kind="canvas")  # fmt: skip
            if form.get("version") != repr(program.updated_at):
                raise StaleForm("The Canvas changed since this page was loaded; reload it and try again")
            try:
                raw = change(program.spec, form)
                messaging.update_program(uow=uow, workspace_id=ctx.workspace_id, program_id=program_id,
                                         raw=raw, now=ctx.c.now())  # fmt: skip
            except InvalidProgram as exc:
                return program, exc.message
        return None, ""

    refused, message = await in_thread(run)
    if refused is None:
        return redirect(f"/campaigns/{program_id}#{where.replace('step:', 'step-')}")

    def values() -> dict[str, Any]:
        with ctx.c.uow(readonly=True) as uow:
            return canvas_values(ctx, uow, refused)

    found = await in_thread(values)
    if where.startswith("step:"):
        found["step_fields_by_id"] = {**found["step_fields_by_id"], where[5:]: form}
    return render(ctx, "campaign.html", status=400, title=refused.name, nav="campaigns", notice="",
                  refused={"where": where, "message": message, "form": form}, **found)  # fmt: skip


@page("write")
async def save_entry(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/campaigns/{id}/entry`: how users enter."""
    return await _change(
        request, ctx, "entry", lambda d, f: {**d, "entry": cf.entry_from_form(f, d.get("entry"))}
    )


@page("write")
async def save_settings(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/campaigns/{id}/settings`: name, exit criteria, conversion and re-entry."""
    return await _change(request, ctx, "settings", lambda d, f: cf.settings_from_form(f, d))


@page("write")
async def add_step(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/campaigns/{id}/steps`: a new step at a position."""

    def change(d: cf.Definition, f: dict[str, str]) -> cf.Definition:
        step_id = f.get("id", "").strip() or cf.new_step_id(d, f.get("name", ""))
        return cf.insert_step(d, cf.step_from_form(f, step_id), f.get("position", "first"))

    return await _change(request, ctx, "add", change)


@page("write")
async def edit_step(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/campaigns/{id}/steps/{step_id}`: change a step (its id stays)."""
    step_id = request.path_params["step_id"]
    return await _change(request, ctx, f"step:{step_id}",
                         lambda d, f: cf.replace_step(d, step_id, cf.step_from_form(f, step_id)))  # fmt: skip


@page("write")
async def remove_step(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/campaigns/{id}/steps/{step_id}/remove`: what led to it leads to its next step."""
    step_id = request.path_params["step_id"]
    return await _change(request, ctx, f"step:{step_id}", lambda d, f: cf.remove_step(d, step_id))


@page("write")
async def new_canvas(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/canvases/new`: name, entry and a first step."""
    return await _new_form(ctx, {"entry_type": "api", "type": "message", "channel": "email"}, "", 200)


async def _new_form(ctx: Ctx, fields: dict[str, str], message: str, status: int) -> Response:
    def run() -> dict[str, Any]:
        with ctx.c.uow(readonly=True) as uow:
            return _choices(ctx, uow)

    return render(ctx, "canvas_new.html", status=status, title=ctx.gettext("New Canvas"), nav="campaigns",
                  f=fields, message=message, **await in_thread(run))  # fmt: skip


@page("write")
async def create_canvas(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/canvases`: a draft Canvas with one step."""
    form = form_fields(ctx)

    def run() -> Program:
        step = cf.step_from_form(form, cf.new_step_id({}, form.get("name", "") or "step"))
        raw = {"name": form.get("canvas_name", ""), "entry": cf.entry_from_form(form, None), "steps": [step]}
        with ctx.c.uow() as uow:
            return messaging.create_program(uow=uow, workspace_id=ctx.workspace_id, kind="canvas", raw=raw,
                                            now=ctx.c.now())  # fmt: skip

    try:
        program = await in_thread(run)
    except InvalidProgram as exc:
        return await _new_form(ctx, form, exc.message, 400)
    return redirect(f"/campaigns/{program.id}")


ROUTES: list[BaseRoute] = [
    Route("/canvases/new", new_canvas, methods=["GET"]),
    Route("/canvases", create_canvas, methods=["POST"]),
    Route("/campaigns/{program_id}/entry", save_entry, methods=["POST"]),
    Route("/campaigns/{program_id}/settings", save_settings, methods=["POST"]),
    Route("/campaigns/{program_id}/steps", add_step, methods=["POST"]),
    Route("/campaigns/{program_id}/steps/{step_id}", edit_step, methods=["POST"]),
    Route("/campaigns/{program_id}/steps/{step_id}/remove", remove_step, methods=["POST"]),
]
