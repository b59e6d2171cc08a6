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
from cohorthub.messaging.model import CampaignSpec, behavior, trigger_matches
from cohorthub.messaging.ports import EntryRow, EventRow, Job, MessagingUnitOfWork, Program, UowFactory
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
        move, events = exit_of(program, spec, entry, event_type, user, now)
        uow.messaging.entries.move_many([move], now=now)
        uow.outbox.append(program.workspace_id, events, now=now)


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
