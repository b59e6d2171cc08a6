"""Canvas journeys: entries from the cohort change log and events, steps, exits and conversions.

"Enters a partner cohort" reads the cohort change log after a per-Canvas cursor (on PostgreSQL a
cohort's changes commit in id order, since writers serialize on the cohort row), so a partner import
reaches the Canvas within one worker tick. Custom events are read after one global cursor for
conversions, exit criteria, event entries and action-based campaigns; every reaction is idempotent
(keyed by the event id), so re-reading a margin of recent events on PostgreSQL is harmless.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from pyroaring import BitMap

from cohorthub.currents.envelope import Envelope
from cohorthub.messaging import services
from cohorthub.messaging.canvas import CanvasSpec
from cohorthub.messaging.dispatch import Sender
from cohorthub.messaging.events import Source, message_event, user_of
from cohorthub.messaging.model import CampaignSpec, behavior, trigger_matches
from cohorthub.messaging.ports import (
    EntryRow,
    EventRow,
    Job,
    MessagingUnitOfWork,
    Move,
    Program,
    UowFactory,
    UserRow,
)
from cohorthub.messaging.steps import Plan, canvas_source, plan_visit

log = logging.getLogger("cohorthub.messaging")
AudienceFn = Callable[[MessagingUnitOfWork, str, Any], Any]


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
    nums = list(dict.fromkeys(nums))
    entries = uow.messaging.entries
    users = {u.num: u for u in uow.messaging.facts.users(program.workspace_id, nums)}
    first = spec.steps[spec.first_step]
    previous = entries.last_entered_many(program.id, nums)
    rows = []
    for num in nums:
        last = previous.get(num)
        if num not in users or (
            last is not None and (not spec.reentry or now - last < spec.reentry_after_seconds)
        ):
            continue
        row = EntryRow(0, program.workspace_id, program.id, num, first.id, now, False, properties, now)
        rows.append((row, f"{trigger}:{num}"))
    ids = entries.add_many(rows, now=now)
    src = canvas_source(program, spec, first)
    events = []
    for row, key in rows:
        if (entry_id := ids.get(key)) is None:
            continue
        user = user_of(users[row.user_num])
        events.append(message_event("users.canvas.Entry", src, user, time=now, in_control_group=False))
        events.append(
            message_event(
                "users.canvasstep.Progression",
                src,
                user,
                time=now,
                canvas_entry_id=str(entry_id),
                next_step_id=first.id,
                progression_type="entry",
                is_canvas_entry=True,
            )
        )
    uow.outbox.append(program.workspace_id, events, now=now)
    return len(ids)


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
        segment_interval: float = 5.0,
    ) -> None:
        self._uow = uow
        self._sender = sender
        self._audience = audience
        self._now = now
        self._owner = owner
        self._lease = lease_seconds
        self._margin = event_margin
        self._segment_interval = segment_interval
        self._checked: dict[str, float] = {}
        self._seen_events: dict[str, set[int]] = {}
        #: The newest id each scanner moved past unread (no program watched); ids up to it count as seen.
        self._skipped: dict[str, int] = {}

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

    def enter_from_segments(self) -> int:
        """Start journeys for users who entered the segment of an active segment-entry Canvas.

        The segment engine catches up incrementally; its members are compared with those stored at the
        previous check (at most every `segment_interval` seconds per Canvas). The first check after
        launch only records the members: users already in the segment do not "enter" it.
        """
        total = 0
        with self._uow(readonly=True) as uow:
            canvases = [(p, services.canvas_spec(p)) for p in uow.messaging.programs.active("canvas")]
        for program, spec in canvases:
            if spec.entry.type != "segment" or not spec.entry.segment_id:
                continue
            now = self._now()
            if now - self._checked.get(program.id, 0.0) < self._segment_interval:
                continue
            self._checked[program.id] = now
            name = f"canvas:{program.id}:segment"
            with self._uow() as uow:
                flt: dict[str, Any] = {
                    "type": "segment",
                    "segment_id": spec.entry.segment_id,
                    "op": "includes",
                }
                if spec.entry.filter is not None:
                    flt = {"and": [flt, spec.entry.filter]}
                members = BitMap(self._audience(uow, program.workspace_id, flt))
                stored = uow.messaging.facts.state(name)
                if stored is not None:
                    entered = members - BitMap.deserialize(base64.b64decode(stored))
                    total += enter_users(
                        uow,
                        program,
                        spec,
                        list(entered),
                        trigger=f"seg{int(now * 1000)}",
                        properties={},
                        now=now,
                    )
                uow.messaging.facts.set_state(name, base64.b64encode(members.serialize()).decode())
                uow.commit()
        return total

    def scan_events(self, limit: int = 5000) -> int:
        """React to new custom events and purchases: conversions, exits, entries, action-based campaigns."""
        custom = self._scan(
            "events",
            False,
            lambda uow, after: uow.messaging.facts.events_after(after, limit),
            lambda uow: uow.messaging.facts.max_ids()[1],
            limit,
        )
        bought = self._scan(
            "purchases",
            True,
            lambda uow, after: uow.messaging.facts.purchases_after(after, limit),
            lambda uow: uow.messaging.facts.max_purchase_id(),
            limit,
        )
        return custom + bought  # fmt: skip

    def _scan(
        self,
        name: str,
        purchase: bool,
        read: Callable[[MessagingUnitOfWork, int], list[EventRow]],
        newest: Callable[[MessagingUnitOfWork], int],
        limit: int,
    ) -> int:
        """React to the events after the cursor `name`; return how many meant something to a program,
        plus one when the read was full (more are waiting: the worker goes on without its pause).

        The newest id is read before the active programs, and only events up to it are considered: a
        program launched after that read sees every event after it. While no active program reacts to
        this kind of event at all, the cursor moves to the newest id without reading a row. The events
        are read outside any write transaction (on SQLite a write would hold the one writer while
        thousands are read); the reactions and the cursor are written in one transaction after.
        """
        seen = self._seen_events.setdefault(name, set())
        with self._uow(readonly=True) as uow:
            cursor = uow.messaging.facts.cursor(name)
            top = newest(uow)
            campaigns = _by_workspace(uow.messaging.programs.active("campaign"), services.campaign_spec)
            canvases = _by_workspace(uow.messaging.programs.active("canvas"), services.canvas_spec)
            watched = _watches(campaigns, canvases, purchase)
            found = read(uow, max(0, cursor - self._margin)) if cursor is not None and watched else []
        if cursor is None or not watched:  # the first scan starts after what is already there
            self._skipped[name] = top
            self._seen_events[name] = set()
            if cursor is None or top > cursor:
                with self._uow() as uow:
                    uow.messaging.facts.set_cursor(name, max(top, uow.messaging.facts.cursor(name) or 0))
                    uow.commit()
            return 0
        skipped = self._skipped.get(name, 0)
        events = [
            e for e in found if e.id <= top and (e.id > cursor or (e.id > skipped and e.id not in seen))
        ]
        if not events:
            return 0
        with self._uow() as uow:
            reacting = [e for e in events if _reacts(e, campaigns, canvases)]
            users = _users_of(uow, reacting)
            now = self._now()
            for event in reacting:
                user = users.get((event.workspace_id, event.user_num))
                if user is not None:
                    ws = event.workspace_id
                    self._react(uow, event, campaigns.get(ws, []), canvases.get(ws, []), user, now)
            high = max(cursor, events[-1].id, uow.messaging.facts.cursor(name) or 0)
            uow.messaging.facts.set_cursor(name, high)
            uow.commit()
        # on PostgreSQL a lower id can commit later: recent ids are read again, but reacted to once
        self._seen_events[name] = {i for i in seen | {e.id for e in events} if i > high - self._margin}
        return len(reacting) + (len(found) >= limit)

    def _react(
        self,
        uow: MessagingUnitOfWork,
        event: EventRow,
        campaigns: list[tuple[Program, CampaignSpec]],
        canvases: list[tuple[Program, CanvasSpec]],
        user: dict[str, str],
        now: float,
    ) -> None:
        ws = event.workspace_id
        for program, spec in campaigns:
            conversion = spec.conversion
            if conversion and trigger_matches(conversion.event, conversion.purchase, event):
                since = event.time - conversion.window_seconds
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
                                    conversion_behavior=behavior(event),
                                    conversion_behavior_index=0,
                                )
                            ],
                            now=now,
                        )
            delivery = spec.delivery
            action = delivery.purchase or delivery.event
            if delivery.type == "action" and trigger_matches(action, delivery.purchase is not None, event):
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
        for canvas, canvas_spec in canvases:
            self._canvas_event(uow, canvas, canvas_spec, event, user, now)

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
        if spec.conversion and trigger_matches(spec.conversion.event, spec.conversion.purchase, event):
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
                                conversion_behavior=behavior(event),
                                conversion_behavior_index=0,
                            )
                        ],
                        now=now,
                    )
        exits = spec.exit.purchases if event.kind == "purchase" else spec.exit.events
        exiting = event.name in exits or (event.kind == "purchase" and "*" in exits)
        deciding = {  # decision splits this event answers "yes": their journeys go on now
            s.id: s.within_seconds or 0.0
            for s in spec.steps.values()
            if s.type == "decision_split"
            and trigger_matches(s.purchase or s.event, s.purchase is not None, event)
        }
        if exiting or deciding:
            for entry in entries.active_for_user(program.workspace_id, event.user_num):
                if entry.canvas_id != program.id:
                    continue
                if exiting:
                    self._exit(uow, program, spec, entry, "users.canvas.exit.PerformedEvent", user, now)
                elif entry.waiting and entry.step_id in deciding:
                    since = entry.step_since
                    if since <= event.time <= since + deciding[entry.step_id]:
                        entries.wake(entry.id, now)
        trigger = spec.entry.purchase or spec.entry.event
        if spec.entry.type == "event" and trigger_matches(trigger, spec.entry.purchase is not None, event):
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
        move, events = _exit_of(program, spec, entry, event_type, user, now)
        uow.messaging.entries.move_many([move], now=now)
        uow.outbox.append(program.workspace_id, events, now=now)

    def advance(self, limit: int = 500) -> int:
        """Run the due steps of leased journeys; return how many journeys were visited.

        Every visit is planned first; the messages of all of them go out in batches (the ledger keeps
        each exactly once), then all moves and progression events commit in one transaction.
        """
        with self._uow(readonly=True) as uow:
            if not uow.messaging.entries.any_due(self._now()):
                return 0
        with self._uow() as uow:
            now = self._now()
            due = uow.messaging.entries.claim(
                now=now, owner=self._owner, lease_until=now + self._lease, limit=limit
            )
            uow.commit()
        if not due:
            return 0
        plans, held = self._plan(due)
        for workspace_id in {p.entry.workspace_id for p in plans}:
            items = [i for p in plans if p.entry.workspace_id == workspace_id for i in p.items]
            self._sender.deliver(workspace_id, items)
        with self._uow() as uow:
            now = self._now()
            moves = [Move(e.id, e.step_id, e.step_since, e.waiting, now + 5.0, "active") for e in held]
            events: dict[str, list[Envelope]] = {}
            known: dict[str, tuple[Program, CanvasSpec] | None] = {}
            for plan in plans:
                self._record(uow, plan, now, known, moves, events)
            uow.messaging.entries.move_many(moves, now=now)
            for workspace_id, group in events.items():
                uow.outbox.append(workspace_id, group, now=now)
            uow.commit()
        return len(due)

    def _plan(self, due: list[EntryRow]) -> tuple[list[Plan], list[EntryRow]]:
        plans: list[Plan] = []
        held: list[EntryRow] = []
        with self._uow(readonly=True) as uow:
            programs = {cid: uow.messaging.programs.get(None, cid) for cid in {e.canvas_id for e in due}}
            users: dict[int, UserRow] = {}
            for ws in {e.workspace_id for e in due}:
                nums = [e.user_num for e in due if e.workspace_id == ws]
                users.update({u.num: u for u in uow.messaging.facts.users(ws, nums)})
            audiences: dict[tuple[str, str], Any] = {}
            specs: dict[str, CanvasSpec] = {}
            now = self._now()
            for entry in due:
                program = programs.get(entry.canvas_id)
                if program is None or program.status != "active":
                    held.append(entry)
                    continue
                user = users.get(entry.user_num)
                if user is None:
                    plans.append(
                        Plan(
                            entry,
                            UserRow(entry.user_num, "", None, None, None, None, {}, {}),
                            None,
                            now,
                            state="done",
                        )
                    )
                    continue

                def matches(flt: dict[str, Any], ws: str = entry.workspace_id, num: int = user.num) -> bool:
                    key = (ws, msgspec.json.encode(flt).decode())
                    if key not in audiences:
                        audiences[key] = self._audience(uow, ws, flt)
                    return num in audiences[key]

                def performed(name: str, since: float, purchase: bool, num: int = user.num) -> bool:
                    return uow.messaging.facts.performed(num, name, since, purchase=purchase)

                if program.id not in specs:
                    specs[program.id] = services.canvas_spec(program)
                spec = specs[program.id]
                plans.append(
                    plan_visit(program, spec, entry, user, now=now, matches=matches, performed=performed)
                )
        return plans, held

    def _record(
        self,
        uow: MessagingUnitOfWork,
        plan: Plan,
        now: float,
        known: dict[str, tuple[Program, CanvasSpec] | None],
        moves: list[Move],
        events: dict[str, list[Envelope]],
    ) -> None:
        entry = plan.entry
        if entry.canvas_id not in known:
            found = uow.messaging.programs.get(None, entry.canvas_id)
            known[entry.canvas_id] = (found, services.canvas_spec(found)) if found is not None else None
        if (loaded := known[entry.canvas_id]) is None:
            return
        program, spec = loaded
        out = events.setdefault(program.workspace_id, [])
        user = user_of(plan.user) if plan.user.braze_id else None
        if plan.exit_event is not None and user is not None:
            move, exit_events = _exit_of(program, spec, entry, plan.exit_event, user, now)
            moves.append(move)
            out.extend(exit_events)
            return
        next_at = plan.next_at if plan.state == "active" else None
        moves.append(Move(entry.id, plan.step_id, plan.since, plan.waiting, next_at, plan.state))
        if user is None:
            return
        out.extend(
            message_event(
                "users.canvasstep.Progression",
                canvas_source(program, spec, step),
                user,
                time=now,
                canvas_entry_id=str(entry.id),
                next_step_id=nxt,
                progression_type="step" if nxt else "finished",
                is_canvas_entry=False,
            )
            for step, nxt in plan.moves
        )


def _exit_of(
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


Spec = TypeVar("Spec", CampaignSpec, CanvasSpec)


def _by_workspace(
    programs: list[Program], spec_of: Callable[[Program], Spec]
) -> dict[str, list[tuple[Program, Spec]]]:
    """Active programs with their definitions, by workspace."""
    out: dict[str, list[tuple[Program, Spec]]] = {}
    for program in programs:
        out.setdefault(program.workspace_id, []).append((program, spec_of(program)))
    return out


def _reacts(
    event: EventRow,
    campaigns: dict[str, list[tuple[Program, CampaignSpec]]],
    canvases: dict[str, list[tuple[Program, CanvasSpec]]],
) -> bool:
    """Whether an active program of the event's workspace reacts to it (most events mean nothing to any)."""
    ws = event.workspace_id
    return any(spec.reacts_to(event) for _, spec in campaigns.get(ws, ())) or any(
        spec.reacts_to(event) for _, spec in canvases.get(ws, ())
    )


def _watches(
    campaigns: dict[str, list[tuple[Program, CampaignSpec]]],
    canvases: dict[str, list[tuple[Program, CanvasSpec]]],
    purchase: bool,
) -> bool:
    """Whether any active program reacts to purchases (or, with `purchase` False, to custom events)."""
    specs: list[CampaignSpec | CanvasSpec] = [spec for group in campaigns.values() for _, spec in group]
    specs += [spec for group in canvases.values() for _, spec in group]
    return any(p == purchase and n is not None for spec in specs for n, p in spec.triggers())


def _users_of(uow: MessagingUnitOfWork, events: list[EventRow]) -> dict[tuple[str, int], dict[str, str]]:
    """The users of these events as message events name them, one read per workspace."""
    out: dict[tuple[str, int], dict[str, str]] = {}
    for ws in {e.workspace_id for e in events}:
        nums = sorted({e.user_num for e in events if e.workspace_id == ws})
        out.update({(ws, u.num): user_of(u) for u in uow.messaging.facts.users(ws, nums)})
    return out
