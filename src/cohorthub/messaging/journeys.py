"""Canvas journeys: entries from the cohort change log and segments, steps, and exits on leaving the audience.

"Enters a partner cohort" reads the cohort change log after a per-Canvas cursor (on PostgreSQL a
cohort's changes commit in id order, since writers serialize on the cohort row), so a partner import
reaches the Canvas within one worker tick. Custom events and purchases are `reactions`' concern.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from pyroaring import BitMap

from cohorthub.currents.envelope import Envelope
from cohorthub.messaging import services
from cohorthub.messaging.canvas import CanvasSpec
from cohorthub.messaging.dispatch import Sender
from cohorthub.messaging.events import message_event, user_of
from cohorthub.messaging.ports import (
    EntryRow,
    MessagingUnitOfWork,
    Move,
    Program,
    UowFactory,
    UserRow,
)
from cohorthub.messaging.steps import Plan, canvas_source, exit_of, plan_visit

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
    per_user: Mapping[int, dict[str, Any]] | None = None,
    repeat_of: Sequence[str] = (),
) -> int:
    """Start journeys for these users (re-entry rules applied); return how many entered.

    Each journey's properties are `properties`, and a user's own from `per_user`. `repeat_of`: the
    triggers of earlier calls this one repeats; a user one of them entered is not entered again.
    """
    nums = list(dict.fromkeys(nums))
    entries = uow.messaging.entries
    if repeat_of:
        earlier = entries.existing_triggers(program.id, [_key(t, n) for t in repeat_of for n in nums])
        nums = [n for n in nums if not any(_key(t, n) in earlier for t in repeat_of)]
    if not nums:
        return 0
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
        own = {**properties, **per_user[num]} if per_user and num in per_user else properties
        row = EntryRow(0, program.workspace_id, program.id, num, first.id, now, False, own, now)
        rows.append((row, _key(trigger, num)))
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


def _key(trigger: str, num: int) -> str:
    """A journey's trigger key: one journey of a Canvas per trigger and user."""
    return f"{trigger}:{num}"


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
        segment_interval: float = 5.0,
    ) -> None:
        self._uow = uow
        self._sender = sender
        self._audience = audience
        self._now = now
        self._owner = owner
        self._lease = lease_seconds
        self._segment_interval = segment_interval
        self._checked: dict[str, float] = {}

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
            move, exit_events = exit_of(program, spec, entry, plan.exit_event, user, now)
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
