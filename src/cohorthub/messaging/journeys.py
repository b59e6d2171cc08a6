"""Canvas journeys: entries from the cohort change log and events, steps, exits and conversions.

"Enters a partner cohort" reads the cohort change log after a per-Canvas cursor (on PostgreSQL a
cohort's changes commit in id order, since writers serialize on the cohort row), so a partner import
reaches the Canvas within one worker tick. Custom events are read after one global cursor for
conversions, exit criteria, event entries and action-based campaigns; every reaction is idempotent
(keyed by the event id), so re-reading a margin of recent events on PostgreSQL is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cohorthub.messaging import services
from cohorthub.messaging.audience import zone
from cohorthub.messaging.canvas import CanvasSpec, Step
from cohorthub.messaging.dispatch import Item, Sender
from cohorthub.messaging.events import Source, message_event, user_of
from cohorthub.messaging.ports import (
    EntryRow,
    EventRow,
    Job,
    MessagingUnitOfWork,
    Program,
    UowFactory,
    UserRow,
)

log = logging.getLogger("cohorthub.messaging")
MAX_STEPS_PER_VISIT = 32
AudienceFn = Callable[[MessagingUnitOfWork, str, Any], Any]


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


def enter_users(
    uow: MessagingUnitOfWork,
    program: Program,
    spec: CanvasSpec,
    nums: list[int],
    *,
    trigger: str,
    properties: dict[str, Any],
    now: float,
) -> int:
    """Start journeys for these users (re-entry rules applied); return how many entered."""
    entries = uow.messaging.entries
    users = {u.num: u for u in uow.messaging.facts.users(program.workspace_id, nums)}
    first = spec.steps[spec.first_step]
    events = []
    entered = 0
    for num in nums:
        user = users.get(num)
        if user is None:
            continue
        last = entries.last_entered(program.id, num)
        if last is not None and (not spec.reentry or now - last < spec.reentry_after_seconds):
            continue
        row = EntryRow(0, program.workspace_id, program.id, num, first.id, now, False, properties, now)
        entry_id = entries.add(row, trigger_key=f"{trigger}:{num}", now=now)
        if entry_id is None:
            continue
        entered += 1
        src = canvas_source(program, spec, first)
        events.append(
            message_event("users.canvas.Entry", src, user_of(user), time=now, in_control_group=False)
        )
        events.append(
            message_event(
                "users.canvasstep.Progression",
                src,
                user_of(user),
                time=now,
                canvas_entry_id=str(entry_id),
                next_step_id=first.id,
                progression_type="entry",
                is_canvas_entry=True,
            )
        )
    uow.outbox.append(program.workspace_id, events, now=now)
    return entered


def _next_time_of_day(hhmm: str, time_zone: str | None, now: float) -> float:
    tz = zone(time_zone) or ZoneInfo("UTC")
    local = datetime.fromtimestamp(now, tz)
    hours, minutes = (int(x) for x in hhmm.split(":"))
    when = local.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    if when <= local:
        when += timedelta(days=1)
    return when.timestamp()


class Journeys:
    """Moves users into, through and out of active Canvases."""

    def __init__(
        self,
        *,
        uow: UowFactory,
        sender: Sender,
        audience: AudienceFn,
        now: Callable[[], float],
        owner: str,
        lease_seconds: float = 60.0,
        event_margin: int = 0,
    ) -> None:
        self._uow = uow
        self._sender = sender
        self._audience = audience
        self._now = now
        self._owner = owner
        self._lease = lease_seconds
        self._margin = event_margin

    def enter_from_cohorts(self, limit: int = 5000) -> int:
        """Start journeys for users who entered the partner cohort of an active Canvas."""
        total = 0
        with self._uow(readonly=True) as uow:
            canvases = [(p, services.canvas_spec(p)) for p in uow.messaging.programs.active("canvas")]
        for program, spec in canvases:
            if spec.entry.type != "cohort" or not spec.entry.partner or not spec.entry.cohort_id:
                continue
            name = f"canvas:{program.id}:cohort"
            with self._uow() as uow:
                after = uow.messaging.facts.cursor(name) or 0
                changes = uow.messaging.facts.cohort_entries_after(
                    program.workspace_id, spec.entry.partner, spec.entry.cohort_id, after, limit
                )
                if not changes:
                    continue
                nums = sorted({n for _, n in changes})
                if spec.entry.filter is not None:
                    members = self._audience(uow, program.workspace_id, spec.entry.filter)
                    nums = [n for n in nums if n in members]
                total += enter_users(
                    uow, program, spec, nums, trigger=f"cc{changes[-1][0]}", properties={}, now=self._now()
                )
                uow.messaging.facts.set_cursor(name, changes[-1][0])
                uow.commit()
        return total

    def scan_events(self, limit: int = 5000) -> int:
        """React to new custom events: conversions, exits, event entries, action-based campaigns."""
        with self._uow() as uow:
            cursor = uow.messaging.facts.cursor("events")
            if cursor is None:
                uow.messaging.facts.set_cursor("events", uow.messaging.facts.max_ids()[1])
                uow.commit()
                return 0
            events = uow.messaging.facts.events_after(max(0, cursor - self._margin), limit)
            if not events:
                return 0
            campaigns = [(p, services.campaign_spec(p)) for p in uow.messaging.programs.active("campaign")]
            canvases = [(p, services.canvas_spec(p)) for p in uow.messaging.programs.active("canvas")]
            now = self._now()
            for event in events:
                self._react(uow, event, campaigns, canvases, now)
            uow.messaging.facts.set_cursor("events", max(cursor, events[-1].id))
            uow.commit()
        return len(events)

    def _react(
        self, uow: MessagingUnitOfWork, event: EventRow, campaigns: list[Any], canvases: list[Any], now: float
    ) -> None:
        ws = event.workspace_id
        users = uow.messaging.facts.users(ws, [event.user_num])
        if not users:
            return
        user = user_of(users[0])
        for program, spec in campaigns:
            if program.workspace_id != ws:
                continue
            if spec.conversion and spec.conversion.event == event.name:
                since = event.time - spec.conversion.window_seconds
                for row in uow.messaging.ledger.convertible(ws, event.user_num, [program.id], since):
                    if uow.messaging.ledger.touch(row.id, "converted_at", now=now):
                        uow.outbox.append(
                            ws,
                            [
                                message_event(
                                    "users.campaigns.Conversion",
                                    Source(
                                        ws,
                                        campaign_id=program.id,
                                        campaign_name=program.name,
                                        message_variation_id=spec.message_variation_id,
                                    ),
                                    user,
                                    time=event.time,
                                    dispatch_id=row.key.dispatch_id,
                                    send_id=row.send_id,
                                    conversion_behavior=f"Performs Custom Event: {event.name}",
                                    conversion_behavior_index=0,
                                )
                            ],
                            now=now,
                        )
            if spec.delivery.type == "action" and spec.delivery.event == event.name:
                job = Job(
                    0,
                    ws,
                    program.id,
                    services.new_dispatch_id(),
                    None,
                    now,
                    {"recipients": [{"num": event.user_num}], "event_properties": event.properties},
                )
                uow.messaging.jobs.add(job, idem_key=f"ev:{event.id}:{program.id}"[:96], now=now)
        for program, spec in canvases:
            if program.workspace_id != ws:
                continue
            self._canvas_event(uow, program, spec, event, user, now)

    def _canvas_event(
        self,
        uow: MessagingUnitOfWork,
        program: Program,
        spec: CanvasSpec,
        event: EventRow,
        user: dict[str, str],
        now: float,
    ) -> None:
        entries = uow.messaging.entries
        if spec.conversion and spec.conversion.event == event.name:
            for entry in entries.converted_since(
                program.id, event.user_num, event.time - spec.conversion.window_seconds
            ):
                if entry.entered_at <= event.time + 1.0 and entries.convert(
                    entry.id, now
                ):  # times in whole s
                    step = spec.steps.get(entry.step_id or "")
                    uow.outbox.append(
                        program.workspace_id,
                        [
                            message_event(
                                "users.canvas.Conversion",
                                canvas_source(program, spec, step),
                                user,
                                time=event.time,
                                conversion_behavior=f"Performs Custom Event: {event.name}",
                                conversion_behavior_index=0,
                            )
                        ],
                        now=now,
                    )
        if event.name in spec.exit.events:
            for entry in entries.active_for_user(program.workspace_id, event.user_num):
                if entry.canvas_id == program.id:
                    self._exit(uow, program, spec, entry, "users.canvas.exit.PerformedEvent", user, now)
        if spec.entry.type == "event" and spec.entry.event == event.name:
            enter_users(
                uow,
                program,
                spec,
                [event.user_num],
                trigger=f"ev{event.id}",
                properties=event.properties,
                now=now,
            )

    def _exit(
        self,
        uow: MessagingUnitOfWork,
        program: Program,
        spec: CanvasSpec,
        entry: EntryRow,
        event_type: str,
        user: dict[str, str],
        now: float,
    ) -> None:
        step = spec.steps.get(entry.step_id or "")
        uow.messaging.entries.move(
            entry.id, step_id=entry.step_id, since=now, waiting=False, next_at=None, state="exited", now=now
        )
        src = canvas_source(program, spec, step)
        uow.outbox.append(
            program.workspace_id,
            [
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
            ],
            now=now,
        )

    def advance(self, limit: int = 200) -> int:
        """Run the due steps of leased journeys; return how many journeys were visited."""
        with self._uow() as uow:
            now = self._now()
            due = uow.messaging.entries.claim(
                now=now, owner=self._owner, lease_until=now + self._lease, limit=limit
            )
            uow.commit()
        if not due:
            return 0
        with self._uow(readonly=True) as uow:
            programs = {
                p.id: p
                for p in (uow.messaging.programs.get(None, cid) for cid in {e.canvas_id for e in due})
                if p is not None
            }
        for entry in due:
            program = programs.get(entry.canvas_id)
            if program is None or program.status != "active":
                self._hold(entry)
                continue
            try:
                self._visit(program, services.canvas_spec(program), entry)
            except Exception:
                log.exception(
                    "Canvas %s: journey %s failed at step %s", entry.canvas_id, entry.id, entry.step_id
                )
                self._hold(entry, delay=30.0)
        return len(due)

    def _hold(self, entry: EntryRow, delay: float = 5.0) -> None:
        with self._uow() as uow:
            now = self._now()
            uow.messaging.entries.move(
                entry.id,
                step_id=entry.step_id,
                since=entry.step_since,
                waiting=entry.waiting,
                next_at=now + delay,
                state="active",
                now=now,
            )
            uow.commit()

    def _visit(self, program: Program, spec: CanvasSpec, entry: EntryRow) -> None:
        with self._uow(readonly=True) as uow:
            found = uow.messaging.facts.users(program.workspace_id, [entry.user_num])
        if not found:
            return self._save(program, spec, entry, None, None, None, None, "user deleted")
        user = found[0]
        step_id, since, waiting = entry.step_id, entry.step_since, entry.waiting
        if (
            spec.exit.leaves_audience
            and spec.entry.type == "cohort"
            and not self._in_entry_audience(spec, program, user)
        ):
            with self._uow() as uow:
                self._exit(
                    uow, program, spec, entry, "users.canvas.exit.MatchedAudience", user_of(user), self._now()
                )
                uow.commit()
            return None
        for _ in range(MAX_STEPS_PER_VISIT):
            step = spec.steps.get(step_id or "")
            if step is None:
                return self._save(program, spec, entry, None, None, None, None, "finished")
            now = self._now()
            if step.type == "message":
                assert step.message is not None
                item = Item(
                    canvas_source(program, spec, step),
                    user,
                    f"e{entry.id}",
                    step.message,
                    values={
                        "canvas_entry_properties": entry.properties,
                        "canvas": {
                            "api_id": program.id,
                            "name": program.name,
                            "variant_api_id": spec.variation_id,
                            "variant_name": "Variant 1",
                        },
                        "campaign": {"name": step.name, "api_id": step.id},
                    },
                )
                self._sender.deliver(program.workspace_id, [item])
                nxt: str | None = step.next
            elif step.type == "delay":
                if not waiting:
                    wake = (
                        now + step.seconds
                        if step.seconds is not None
                        else _next_time_of_day(step.until or "00:00", user.time_zone, now)
                    )
                    return self._save(program, spec, entry, step, step_id, now, wake, None, waiting=True)
                nxt = step.next
            elif step.type == "audience_split":
                nxt = step.otherwise
                with self._uow(readonly=True) as uow:
                    for path in step.paths:
                        if user.num in self._audience(uow, program.workspace_id, path.filter):
                            nxt = path.next
                            break
            else:
                if not waiting:
                    return self._save(
                        program,
                        spec,
                        entry,
                        step,
                        step_id,
                        now,
                        now + (step.within_seconds or 0),
                        None,
                        waiting=True,
                    )
                with self._uow(readonly=True) as uow:
                    did = uow.messaging.facts.performed(user.num, step.event or "", since)
                nxt = step.yes if did else step.no
            self._progress(program, spec, entry, user, step, nxt)
            step_id, since, waiting = nxt, self._now(), False
            entry = EntryRow(
                entry.id,
                entry.workspace_id,
                entry.canvas_id,
                entry.user_num,
                nxt,
                since,
                False,
                entry.properties,
                entry.entered_at,
            )
        return self._save(program, spec, entry, None, step_id, since, self._now(), None)

    def _in_entry_audience(self, spec: CanvasSpec, program: Program, user: UserRow) -> bool:
        flt = {
            "type": "cohort",
            "partner": spec.entry.partner,
            "cohort_id": spec.entry.cohort_id,
            "op": "includes",
        }
        with self._uow(readonly=True) as uow:
            return user.num in self._audience(uow, program.workspace_id, flt)

    def _progress(
        self, program: Program, spec: CanvasSpec, entry: EntryRow, user: UserRow, step: Step, nxt: str | None
    ) -> None:
        with self._uow() as uow:
            now = self._now()
            uow.messaging.entries.move(
                entry.id,
                step_id=nxt,
                since=now,
                waiting=False,
                next_at=now,
                state="active" if nxt else "done",
                now=now,
            )
            uow.outbox.append(
                program.workspace_id,
                [
                    message_event(
                        "users.canvasstep.Progression",
                        canvas_source(program, spec, step),
                        user_of(user),
                        time=now,
                        canvas_entry_id=str(entry.id),
                        next_step_id=nxt,
                        progression_type="step" if nxt else "finished",
                        is_canvas_entry=False,
                    )
                ],
                now=now,
            )
            uow.commit()

    def _save(
        self,
        program: Program,
        spec: CanvasSpec,
        entry: EntryRow,
        step: Step | None,
        step_id: str | None,
        since: float | None,
        next_at: float | None,
        done: str | None,
        *,
        waiting: bool = False,
    ) -> None:
        with self._uow() as uow:
            now = self._now()
            uow.messaging.entries.move(
                entry.id,
                step_id=step_id,
                since=since or now,
                waiting=waiting,
                next_at=next_at,
                state="done" if done else "active",
                now=now,
            )
            uow.commit()
