"""The durable scheduler: run due dispatch jobs of campaigns (and scheduled Canvas entries).

Jobs live in the database; a worker leases a due job, and a job whose worker died is leased again
when its lease runs out. A job due while every worker was down runs when one comes back, unless it
is later than `max_lateness` (then it is recorded as missed). Recurring campaigns queue their next
dispatch when one finishes, keyed by its due time so it is queued once whoever finishes first.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyroaring import BitMap

from cohorthub import clock
from cohorthub.messaging import services
from cohorthub.messaging.audience import audience_filter, local_time_at, quiet_until, unreachable_reason
from cohorthub.messaging.dispatch import Sender
from cohorthub.messaging.events import Source
from cohorthub.messaging.journeys import enter_users
from cohorthub.messaging.model import CampaignSpec
from cohorthub.messaging.outgoing import Item
from cohorthub.messaging.ports import Job, MessagingUnitOfWork, Program, UowFactory, UserRow

log = logging.getLogger("cohorthub.messaging")

#: Computes an audience filter's exact members in a transaction (segments, cohorts, attributes).
AudienceFn = Callable[[MessagingUnitOfWork, str, Any], BitMap]


@dataclass(frozen=True, slots=True)
class SchedulerOptions:
    """Tunables of the scheduler."""

    batch_size: int = 500
    lease_seconds: float = 60.0
    max_lateness: float = 3600.0
    frequency_cap: int | None = None  # messages per user and channel…
    frequency_window: float = 86400.0  # …within this many seconds


def next_occurrence(first: float, every: str, after: float) -> float | None:
    """The first recurrence of `first` (daily, weekly or monthly) later than `after`; None past year 9999.

    Computed, not stepped: a schedule that started long ago costs the same as one that started today.
    A monthly recurrence keeps the day of the month (the 28th at most, so every month has it)."""
    if after < first:
        return first
    if every in ("daily", "weekly"):
        step = 86400.0 if every == "daily" else 7 * 86400.0
        when = first + (math.floor((after - first) / step) + 1) * step
        return when if when <= clock.LATEST else None
    start = datetime.fromtimestamp(first, UTC)
    day = min(start.day, 28)
    seen = datetime.fromtimestamp(after, UTC)
    months = (seen.year - start.year) * 12 + seen.month - start.month  # the month `after` falls in
    for n in (months, months + 1):
        if n <= 0:
            continue  # the first occurrence is `first` itself, not later than `after`
        year, month = start.year + (start.month - 1 + n) // 12, (start.month - 1 + n) % 12 + 1
        if year > 9999:
            return None
        when = start.replace(year=year, month=month, day=day).timestamp()
        if when > after:
            return when
    return None  # not reached: the next month's occurrence is later than any time of this one


def campaign_source(program: Program, spec: CampaignSpec) -> Source:
    """A campaign's ids and names for its events."""
    return Source(
        program.workspace_id,
        campaign_id=program.id,
        campaign_name=program.name,
        message_variation_id=spec.message_variation_id,
    )


class JobRunner:
    """Runs one leased campaign job to the end (or until it must wait)."""

    def __init__(
        self,
        *,
        uow: UowFactory,
        sender: Sender,
        audience: AudienceFn,
        now: Callable[[], float],
        owner: str,
        options: SchedulerOptions,
    ) -> None:
        self._uow = uow
        self._sender = sender
        self._audience = audience
        self._now = now
        self._owner = owner
        self._options = options

    def claim(self, limit: int = 4) -> list[Job]:
        """Lease due jobs (none, after one read, when none is due)."""
        with self._uow(readonly=True) as uow:
            if not uow.messaging.jobs.any_due(self._now()):
                return []
        with self._uow() as uow:
            now = self._now()
            jobs = uow.messaging.jobs.claim(
                now=now, owner=self._owner, lease_until=now + self._options.lease_seconds, limit=limit
            )
            uow.commit()
        return jobs

    def run(self, job: Job) -> None:
        """Send the job's dispatch; finish, release or re-queue it."""
        started = self._now()
        with self._uow(readonly=True) as uow:
            program = uow.messaging.programs.get(job.workspace_id, job.program_id)
        if program is None or program.status == "archived":
            return self._finish(job, 0, "cancelled: the program is archived or gone")
        if program.status != "active":
            return self._release(job, started + 5.0)
        late = started - self._latest_due(program, job)
        if late > self._options.max_lateness and job.payload.get("broadcast"):
            self._requeue(program, job, started)
            return self._finish(job, 0, f"missed: {late:.0f} s late (max lateness)")
        if program.kind == "canvas":
            return self._enter_canvas(program, job)
        spec = services.campaign_spec(program)
        nums, props = self._recipients(job, spec)
        notes = {"unreachable": 0, "capped": 0}
        deferred: dict[float, list[int]] = {}
        users_done = 0
        size = self._options.batch_size
        renewed = started
        with self._sender.pipeline() as pipe:
            for start in range(0, len(nums), size):
                if self._now() - renewed > self._options.lease_seconds / 4:
                    renewed = self._now()
                    if not self._extend(job):
                        return None
                with self._uow(readonly=True) as uow:
                    users = uow.messaging.facts.users(job.workspace_id, nums[start : start + size])
                    ready = self._filter(uow, job, spec, users, notes, deferred)
                granted = self._rate(program, spec, len(ready))
                pipe.submit(job.workspace_id, self._items(program, spec, job, ready[:granted], props))
                users_done += len(users)
                if granted < len(ready):
                    pipe.wait()
                    return self._release(job, (int(self._now() // 60) + 1) * 60.0)
        tally = pipe.tally
        with self._uow() as uow:
            uow.messaging.ledger.mark_stale(program.id, job.dispatch_id, before=started, now=self._now())
            for moment, group in deferred.items():
                follow = Job(
                    0,
                    job.workspace_id,
                    program.id,
                    job.dispatch_id,
                    job.send_id,
                    moment,
                    {"recipients": [{"num": n, "trigger_properties": props.get(n, {})} for n in group]},
                )
                uow.messaging.jobs.add(follow, idem_key=f"defer:{job.id}:{int(moment)}", now=self._now())
            uow.commit()
        self._requeue(program, job, started)
        note = (
            f"sent {tally.sent}, delivered {tally.delivered}, failed {tally.failed}, "
            f"aborted {tally.aborted}, already sent {tally.skipped}, "
            f"unreachable {notes['unreachable'] + tally.unreachable}, capped {notes['capped']}, "
            f"deferred {sum(len(g) for g in deferred.values())}"
        )
        return self._finish(job, users_done, note)

    def _latest_due(self, program: Program, job: Job) -> float:
        """When the job's last user is due: in local time, the wall-clock time in the last zone (UTC-12)."""
        if program.kind != "campaign":
            return job.due_at
        delivery = services.campaign_spec(program).delivery
        if delivery.in_local_time and delivery.time is not None:
            return delivery.time + 12 * 3600
        return job.due_at

    def _recipients(self, job: Job, spec: CampaignSpec) -> tuple[list[int], dict[int, dict[str, Any]]]:
        props: dict[int, dict[str, Any]] = {}
        with self._uow(readonly=True) as uow:
            flt = audience_filter(spec.audience)
            if job.payload.get("broadcast"):
                members = self._audience(uow, job.workspace_id, flt)
                common = job.payload.get("trigger_properties") or {}
                return list(members), dict.fromkeys(members, common) if common else {}
            wanted = [r["num"] for r in job.payload.get("recipients", [])]
            for r in job.payload.get("recipients", []):
                props[r["num"]] = r.get("trigger_properties") or {}
            if flt is not None and wanted:
                members = self._audience(uow, job.workspace_id, flt)
                wanted = [n for n in wanted if n in members]
        return wanted, props

    def _filter(
        self,
        uow: MessagingUnitOfWork,
        job: Job,
        spec: CampaignSpec,
        users: list[UserRow],
        notes: dict[str, int],
        deferred: dict[float, list[int]],
    ) -> list[UserRow]:
        now = self._now()
        ready = []
        done = uow.messaging.ledger.existing(job.program_id, "", job.dispatch_id, [u.num for u in users])
        for user in users:
            if user.num in done:
                continue
            if unreachable_reason(user, spec.channel, spec.audience.subscription) is not None:
                notes["unreachable"] += 1
                continue
            moment = None
            if (
                spec.delivery.in_local_time
                and spec.delivery.time is not None
                and job.payload.get("broadcast")
            ):
                local = local_time_at(spec.delivery.time, user.time_zone)
                moment = local if local > now + 1 else None
            moment = moment or quiet_until(spec.quiet_hours, user.time_zone, now)
            if moment is not None:
                deferred.setdefault(moment, []).append(user.num)
                continue
            ready.append(user)
        cap = self._options.frequency_cap
        if cap is not None and spec.frequency_capping and ready:
            counts = uow.messaging.ledger.recent_counts(
                job.workspace_id, [u.num for u in ready], spec.channel, now - self._options.frequency_window
            )
            kept = [u for u in ready if counts.get(u.num, 0) < cap]
            notes["capped"] += len(ready) - len(kept)
            ready = kept
        return ready

    def _rate(self, program: Program, spec: CampaignSpec, wanted: int) -> int:
        if spec.rate_limit_per_minute is None or not wanted:
            return wanted
        with self._uow() as uow:
            granted = uow.messaging.ledger.take_rate(
                program.id, int(self._now() // 60), wanted, spec.rate_limit_per_minute
            )
            uow.commit()
        return granted

    def _items(
        self,
        program: Program,
        spec: CampaignSpec,
        job: Job,
        users: list[UserRow],
        props: dict[int, dict[str, Any]],
    ) -> list[Item]:
        source = campaign_source(program, spec)
        campaign = {
            "api_id": program.id,
            "name": program.name,
            "dispatch_id": job.dispatch_id,
            "message_api_id": spec.message_variation_id,
        }
        event = job.payload.get("event_properties")
        return [
            Item(
                source,
                u,
                job.dispatch_id,
                spec.message,
                send_id=job.send_id,
                values={
                    "trigger_properties": props.get(u.num) or {},
                    "campaign": campaign,
                    "event_properties": event,
                },
                list_unsubscribe=spec.audience.subscription != "all",
            )
            for u in users
        ]

    def _enter_canvas(self, program: Program, job: Job) -> None:
        """A Canvas's scheduled entry: the recipients of a scheduled API call (each with its properties),
        else the entry segment's members (the properties of the call, if any); a recurring one queues its
        next occurrence."""
        spec = services.canvas_spec(program)
        recipients = job.payload.get("recipients")
        entered = 0
        if recipients:
            with self._uow() as uow:
                for r in recipients:
                    props = r.get("trigger_properties") or {}
                    trigger = f"job:{job.id}"
                    entered += enter_users(
                        uow, program, spec, [r["num"]], trigger=trigger, properties=props, now=self._now()
                    )
                uow.commit()
            return self._finish(job, entered, f"entered {entered}")
        with self._uow(readonly=True) as uow:
            flt = (
                {"type": "segment", "segment_id": spec.entry.segment_id, "op": "includes"}
                if spec.entry.segment_id
                else None
            )
            members = list(self._audience(uow, job.workspace_id, flt))
        with self._uow() as uow:
            entered = enter_users(
                uow,
                program,
                spec,
                members,
                trigger=f"job:{job.id}",
                properties=job.payload.get("trigger_properties") or {},
                now=self._now(),
            )
            uow.commit()
        self._requeue(program, job, self._now())
        return self._finish(job, entered, f"entered {entered}")

    def _requeue(self, program: Program, job: Job, now: float) -> None:
        """Queue the next occurrence of a recurring campaign or a Canvas's recurring scheduled entry."""
        if not job.payload.get("broadcast"):
            return
        if program.kind == "campaign":
            delivery = services.campaign_spec(program).delivery
            recurring = delivery.type == "recurring"
            first, every, until = delivery.time, delivery.every, delivery.until
        else:
            entry = services.canvas_spec(program).entry
            recurring = entry.type == "schedule"
            first, every, until = entry.time, entry.every, entry.until
        if not recurring or first is None or every is None:
            return
        due = next_occurrence(first, every, max(now, job.due_at))
        if due is None or (until is not None and due > until):
            return
        with self._uow() as uow:
            nxt = Job(
                0, job.workspace_id, program.id, services.new_dispatch_id(), None, due, {"broadcast": True}
            )
            uow.messaging.jobs.add(nxt, idem_key=f"recur:{program.id}:{int(due)}", now=now)
            uow.commit()

    def _extend(self, job: Job) -> bool:
        with self._uow() as uow:
            kept = uow.messaging.jobs.extend(
                job.id, owner=self._owner, lease_until=self._now() + self._options.lease_seconds
            )
            uow.commit()
        return kept

    def _release(self, job: Job, due_at: float) -> None:
        with self._uow() as uow:
            uow.messaging.jobs.release(job.id, due_at=due_at)
            uow.commit()

    def _finish(self, job: Job, targeted: int, note: str) -> None:
        with self._uow() as uow:
            uow.messaging.jobs.finish(job.id, now=self._now(), targeted=targeted, note=note)
            uow.commit()
        log.info("dispatch %s of %s: %s", job.dispatch_id, job.program_id, note)
