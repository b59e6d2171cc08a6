"""Where a journey goes next: one visit of a Canvas entry planned as values (no I/O of its own).

A visit walks the steps from where the entry stands: message steps become items to send, a delay
or a decision split that is not yet due stops the walk, splits choose their path, and the end of
the graph finishes the journey. The caller sends the items (the ledger keeps them exactly once),
then records the plan's moves and progression events in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cohorthub.currents.envelope import Envelope
from cohorthub.messaging.audience import zone
from cohorthub.messaging.canvas import CanvasSpec, Step, entry_audience
from cohorthub.messaging.events import Source, message_event
from cohorthub.messaging.outgoing import Item
from cohorthub.messaging.ports import EntryRow, Move, Program, UserRow

MAX_STEPS_PER_VISIT = 32


def canvas_source(program: Program, spec: CanvasSpec, step: Step | None = None) -> Source:
    """A Canvas's (and step's) ids and names for its events."""
    return Source(
        program.workspace_id,
        canvas_id=program.id,
        canvas_name=program.name,
        canvas_variation_id=spec.variation_id,
        canvas_step_id=step.id if step else None,
        canvas_step_name=step.name if step else None,
        message_variation_id=step.message_variation_id if step and step.message_variation_id else None,
    )


def next_time_of_day(hhmm: str, time_zone: str | None, now: float) -> float:
    """The next `HH:MM` in the user's time zone (UTC when unknown) after `now`."""
    tz = zone(time_zone) or ZoneInfo("UTC")
    local = datetime.fromtimestamp(now, tz)
    hours, minutes = (int(x) for x in hhmm.split(":"))
    when = local.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    if when <= local:
        when += timedelta(days=1)
    return when.timestamp()


@dataclass
class Plan:
    """The outcome of one visit: where the entry ends up, what to send, what to report."""

    entry: EntryRow
    user: UserRow
    step_id: str | None
    since: float
    waiting: bool = False
    next_at: float | None = None
    state: str = "active"
    moves: list[tuple[Step, str | None]] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    exit_event: str | None = None


def plan_visit(
    program: Program,
    spec: CanvasSpec,
    entry: EntryRow,
    user: UserRow,
    *,
    now: float,
    matches: Callable[[dict[str, Any]], bool],
    performed: Callable[[str, float, bool], bool],
) -> Plan:
    """Walk the entry's journey from its step as far as it can go now."""
    plan = Plan(entry, user, entry.step_id, entry.step_since, entry.waiting)
    audience = entry_audience(spec.entry) if spec.exit.leaves_audience else None
    if audience is not None and not matches(audience):
        plan.state, plan.exit_event = "exited", "users.canvas.exit.MatchedAudience"
        return plan
    for _ in range(MAX_STEPS_PER_VISIT):
        step = spec.steps.get(plan.step_id or "")
        if step is None:
            plan.state = "done"
            return plan
        nxt: str | None
        if step.type == "message":
            assert step.message is not None
            plan.items.append(_item(program, spec, step, entry, user))
            nxt = step.next
        elif step.type == "delay":
            if not plan.waiting:
                plan.waiting = True
                plan.next_at = (
                    now + step.seconds
                    if step.seconds is not None
                    else next_time_of_day(
                        step.until or "00:00", user.time_zone if step.in_local_time else None, now
                    )
                )
                return plan
            nxt = step.next
        elif step.type == "audience_split":
            nxt = next((p.next for p in step.paths if matches(p.filter)), step.otherwise)
        else:
            if not plan.waiting:
                plan.waiting, plan.next_at = True, now + (step.within_seconds or 0)
                return plan
            did = performed(step.purchase or step.event or "", plan.since, step.purchase is not None)
            nxt = step.yes if did else step.no
        plan.moves.append((step, nxt))
        plan.step_id, plan.since, plan.waiting, plan.next_at = nxt, now, False, now
    return plan


def _item(program: Program, spec: CanvasSpec, step: Step, entry: EntryRow, user: UserRow) -> Item:
    assert step.message is not None
    canvas = {"api_id": program.id, "name": program.name, "variant_api_id": spec.variation_id,
              "variant_name": "Variant 1"}  # fmt: skip
    return Item(
        canvas_source(program, spec, step),
        user,
        f"e{entry.id}",
        step.message,
        values={"canvas_entry_properties": entry.properties, "canvas": canvas,
                "campaign": {"name": step.name, "api_id": step.id}},
    )  # fmt: skip


def exit_of(
    program: Program, spec: CanvasSpec, entry: EntryRow, event_type: str, user: dict[str, str], now: float
) -> tuple[Move, list[Envelope]]:
    """A journey's exit: its move and its two events."""
    step = spec.steps.get(entry.step_id or "")
    src = canvas_source(program, spec, step)
    events = [
        message_event(event_type, src, user, time=now),
        message_event(
            "users.canvasstep.Progression",
            src,
            user,
            time=now,
            canvas_entry_id=str(entry.id),
            progression_type="exit",
            is_canvas_entry=False,
            exit_reason=event_type.rsplit(".", 1)[1],
        ),
    ]
    return Move(entry.id, entry.step_id, now, False, None, "exited"), events
