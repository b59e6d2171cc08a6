"""Reactions to custom events and purchases: conversions, Canvas exits, decision splits and event entries,
action-based campaigns.

Each kind is read after one global cursor. Only the events an active program of their workspace reacts to
are acted on (most mean nothing to any); while no program reacts to a kind at all, its cursor moves to the
newest id without a row being read. Every reaction is idempotent (keyed by the event id), so re-reading a
margin of recent events on PostgreSQL, where a lower id can commit later, is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cohorthub.messaging import services
from cohorthub.messaging.canvas import CanvasSpec
from cohorthub.messaging.events import Source, message_event, user_of
from cohorthub.messaging.journeys import enter_users
from cohorthub.messaging.model import CampaignSpec, Trigger, Triggers, behavior, trigger_matches
from cohorthub.messaging.ports import EventRow, Job, MessagingUnitOfWork, Program, UowFactory
from cohorthub.messaging.steps import canvas_source, exit_of


class EventReactions:
    """Reads new custom events and purchases and applies what active programs make of them."""

    def __init__(self, *, uow: UowFactory, now: Callable[[], float], event_margin: int = 0) -> None:
        self._uow = uow
        self._now = now
        self._margin = event_margin
        self._seen_events: dict[str, set[int]] = {}
        #: The newest id each scanner moved past unread (no program watched); ids up to it count as seen.
        self._skipped: dict[str, int] = {}

    def scan_events(self, limit: int = 5000) -> int:
        """React to new custom events and purchases: conversions, exits, entries, action-based campaigns;
        return how many meant something to a program, plus one for each kind whose read was full (more are
        waiting: the worker goes on without its pause).

        Each kind is read after its own cursor. The newest ids are read before the active programs (once
        for both kinds), and only events up to them are considered: a program launched after that read
        sees every event after it. While no active program reacts to a kind of event at all, its cursor
        moves to the newest id without reading a row. The events are read outside any write transaction
        (on SQLite a write would hold the one writer while thousands are read); the reactions and the
        cursor are written in one transaction after, a kind at a time.
        """
        with self._uow(readonly=True) as uow:
            facts = uow.messaging.facts
            tops = {"events": facts.max_ids()[1], "purchases": facts.max_purchase_id()}
            cursors = {name: facts.cursor(name) for name in tops}
            campaigns = _by_workspace(uow.messaging.programs.active("campaign"), services.campaign_spec)
            canvases = _by_workspace(uow.messaging.programs.active("canvas"), services.canvas_spec)
            reacts = {ws: Triggers(group) for ws, group in _triggers(campaigns, canvases).items()}
            found: dict[str, list[EventRow]] = {}  # the kinds read: a program watches them
            for name, read in (("events", facts.events_after), ("purchases", facts.purchases_after)):
                cursor = cursors[name]
                if cursor is not None and any(r.watch(name == "purchases") for r in reacts.values()):
                    found[name] = read(max(0, cursor - self._margin), limit)
        return sum(
            self._apply(name, cursors[name], tops[name], found.get(name), campaigns, canvases, reacts, limit)
            for name in tops
        )

    def _apply(
        self,
        name: str,
        cursor: int | None,
        top: int,
        found: list[EventRow] | None,
        campaigns: dict[str, list[tuple[Program, CampaignSpec]]],
        canvases: dict[str, list[tuple[Program, CanvasSpec]]],
        reacts: dict[str, Triggers],
        limit: int,
    ) -> int:
        """React to the events of one kind read after its cursor (`found`; None: not read, as no program
        watches the kind or it has no cursor yet) and move the cursor; `reacts`: by workspace, what its
        active programs react to."""
        seen = self._seen_events.setdefault(name, set())
        if cursor is None or found is None:  # the first scan starts after what is already there
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
            reacting = [e for e in events if e.workspace_id in reacts and reacts[e.workspace_id].match(e)]
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
        purchase = event.kind == "purchase"
        exits = spec.exit.purchases if purchase else spec.exit.events
        exiting = any(trigger_matches(name, purchase, event) for name in exits)
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
                    why = "users.canvas.exit.PerformedEvent"
                    move, events = exit_of(program, spec, entry, why, user, now)
                    entries.move_many([move], now=now)
                    uow.outbox.append(program.workspace_id, events, now=now)
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


Spec = TypeVar("Spec", CampaignSpec, CanvasSpec)


def _by_workspace(
    programs: list[Program], spec_of: Callable[[Program], Spec]
) -> dict[str, list[tuple[Program, Spec]]]:
    """Active programs with their definitions, by workspace."""
    out: dict[str, list[tuple[Program, Spec]]] = {}
    for program in programs:
        out.setdefault(program.workspace_id, []).append((program, spec_of(program)))
    return out


def _triggers(
    campaigns: dict[str, list[tuple[Program, CampaignSpec]]],
    canvases: dict[str, list[tuple[Program, CanvasSpec]]],
) -> dict[str, list[Trigger]]:
    """By workspace, the custom events and purchases its active programs react to."""
    out: dict[str, list[Trigger]] = {}
    for group in (campaigns, canvases):
        for ws, programs in group.items():
            out.setdefault(ws, []).extend(t for _, spec in programs for t in spec.triggers())
    return out


def _users_of(uow: MessagingUnitOfWork, events: list[EventRow]) -> dict[tuple[str, int], dict[str, str]]:
    """The users of these events as message events name them, one read per workspace."""
    out: dict[tuple[str, int], dict[str, str]] = {}
    for ws in {e.workspace_id for e in events}:
        nums = sorted({e.user_num for e in events if e.workspace_id == ws})
        out.update({(ws, u.num): user_of(u) for u in uow.messaging.facts.users(ws, nums)})
    return out
