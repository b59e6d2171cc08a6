"""Campaign and Canvas use cases: create, list, get, preview, launch, pause, resume, archive, stats.

Each use case is one transaction. Sending (test sends, dispatches, Canvas steps) lives in
`dispatch.py` and `journeys.py`; the Braze messaging calls in `triggers.py`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from pyroaring import BitMap

from cohorthub.cohorts.membership import MembershipCache
from cohorthub.errors import InvalidInput
from cohorthub.messaging.audience import audience_filter, unreachable_reason
from cohorthub.messaging.canvas import CanvasSpec, parse_canvas
from cohorthub.messaging.context import liquid_values
from cohorthub.messaging.errors import InvalidProgram, ProgramNotFound, ProgramStateConflict
from cohorthub.messaging.liquid import MessageAborted, RenderFailed
from cohorthub.messaging.model import CampaignSpec, new_program_id, parse_campaign
from cohorthub.messaging.outgoing import render_fields
from cohorthub.messaging.ports import Job, MessagingUnitOfWork, Program, UserRow
from cohorthub.segments import services as segments
from cohorthub.segments.indexes import SegmentIndexes
from cohorthub.text import unstorable_path

KINDS = ("campaign", "canvas", "message")  # message: an ad-hoc /messages/send
PREVIEW_SAMPLE = 10


def new_dispatch_id() -> str:
    """A dispatch id: 24 hex characters, like Braze's."""
    return uuid.uuid4().hex[:24]


def _normalized(kind: str, raw: Any) -> tuple[dict[str, Any], CampaignSpec | CanvasSpec]:
    """The definition with its generated variation ids filled in, and its parsed form."""
    if not isinstance(raw, dict):
        raise InvalidProgram("body", "must be a JSON object")
    if found := unstorable_path(raw, "body"):
        raise InvalidProgram(found[0].removeprefix("body."), found[1])
    raw = dict(raw)
    if kind in ("campaign", "message"):
        campaign = parse_campaign(raw)
        raw["message_variation_id"] = campaign.message_variation_id
        return raw, campaign
    canvas = parse_canvas(raw)
    raw["variation_id"] = canvas.variation_id
    return raw, canvas


def _filters_of(spec: CampaignSpec | CanvasSpec) -> list[tuple[str, Any]]:
    if isinstance(spec, CampaignSpec):
        return [("audience", audience_filter(spec.audience))]
    out: list[tuple[str, Any]] = [("entry.filter", spec.entry.filter)]
    if spec.entry.segment_id:
        out.append(
            ("entry.segment_id", {"type": "segment", "segment_id": spec.entry.segment_id, "op": "includes"})
        )
    if spec.entry.type == "cohort":
        out.append(
            (
                "entry",
                {
                    "type": "cohort",
                    "partner": spec.entry.partner,
                    "cohort_id": spec.entry.cohort_id,
                    "op": "includes",
                },
            )
        )
    for step in spec.steps.values():
        out.extend((f"steps.{step.id}.paths[{i}].filter", p.filter) for i, p in enumerate(step.paths))
    return out


def _check_references(uow: MessagingUnitOfWork, workspace_id: str, spec: CampaignSpec | CanvasSpec) -> None:
    for path, raw in _filters_of(spec):
        if raw is None:
            continue
        try:
            segments.check_filter(uow=uow, workspace_id=workspace_id, raw=raw)
        except InvalidInput as exc:
            raise InvalidProgram(path, exc.message) from exc


def create_program(
    *, uow: MessagingUnitOfWork, workspace_id: str, kind: str, raw: Any, now: float
) -> Program:
    """Validate and store a campaign or Canvas as a draft."""
    if kind not in KINDS:
        raise InvalidProgram("kind", "must be campaign, canvas or message")
    body, spec = _normalized(kind, raw)
    _check_references(uow, workspace_id, spec)
    status = "active" if kind == "message" else "draft"
    program = Program(new_program_id(), workspace_id, kind, spec.name, status, body, now, now)
    uow.messaging.programs.add(program)
    if kind != "message":
        uow.commit()
    return program


def update_program(
    *, uow: MessagingUnitOfWork, workspace_id: str, program_id: str, raw: Any, now: float
) -> Program:
    """Replace a campaign's or Canvas's definition (not once archived)."""
    old = get_program(uow=uow, workspace_id=workspace_id, program_id=program_id)
    if old.status == "archived":
        raise ProgramStateConflict(f"The {old.kind} is archived")
    body, spec = _normalized(old.kind, raw)
    _check_references(uow, workspace_id, spec)
    program = replace(old, name=spec.name, spec=body, updated_at=now)
    uow.messaging.programs.update(program)
    uow.commit()
    return program


def list_programs(
    *, uow: MessagingUnitOfWork, workspace_id: str, kind: str, include_archived: bool = False
) -> list[Program]:
    """A workspace's campaigns (or Canvases), oldest first."""
    return [
        p
        for p in uow.messaging.programs.all(workspace_id, kind)
        if include_archived or p.status != "archived"
    ]


def get_program(
    *, uow: MessagingUnitOfWork, workspace_id: str, program_id: str, kind: str | None = None
) -> Program:
    """The campaign or Canvas, or `ProgramNotFound`."""
    program = uow.messaging.programs.get(workspace_id, program_id)
    if program is None or (kind is not None and program.kind != kind):
        raise ProgramNotFound(f"No {kind or 'campaign or Canvas'} with id {program_id}")
    return program


def campaign_spec(program: Program) -> CampaignSpec:
    """The parsed definition of a stored campaign."""
    return parse_campaign(program.spec)


def canvas_spec(program: Program) -> CanvasSpec:
    """The parsed definition of a stored Canvas."""
    return parse_canvas(program.spec)


def launch_program(*, uow: MessagingUnitOfWork, workspace_id: str, program_id: str, now: float) -> Program:
    """Start a draft: queue its scheduled dispatch, or start listening for its trigger."""
    program = get_program(uow=uow, workspace_id=workspace_id, program_id=program_id)
    if program.status != "draft":
        raise ProgramStateConflict(f"Only a draft can be launched; this {program.kind} is {program.status}")
    jobs = uow.messaging.jobs
    if program.kind == "campaign":
        delivery = campaign_spec(program).delivery
        if delivery.type in ("now", "scheduled", "recurring"):
            due = now if delivery.type == "now" or delivery.time is None else delivery.time
            if delivery.in_local_time:
                due = max(
                    now, due - 14 * 3600
                )  # the earliest zone reaches that wall-clock time 14 h before UTC
            job = Job(0, workspace_id, program.id, new_dispatch_id(), None, due, {"broadcast": True})
            jobs.add(job, idem_key=f"launch:{program.id}", now=now)
    else:
        spec = canvas_spec(program)
        changes, _events = uow.messaging.facts.max_ids()
        if spec.entry.type == "cohort":
            uow.messaging.facts.set_cursor(f"canvas:{program.id}:cohort", changes)
        if spec.entry.type == "schedule":
            job = Job(
                0,
                workspace_id,
                program.id,
                new_dispatch_id(),
                None,
                spec.entry.time or now,
                {"broadcast": True},
            )
            jobs.add(job, idem_key=f"launch:{program.id}", now=now)
    return _set_status(uow, program, "active", now)


def pause_program(*, uow: MessagingUnitOfWork, workspace_id: str, program_id: str, now: float) -> Program:
    """Stop sending until resumed (queued dispatches wait; journeys hold at their step)."""
    program = get_program(uow=uow, workspace_id=workspace_id, program_id=program_id)
    if program.status != "active":
        raise ProgramStateConflict(
            f"Only an active {program.kind} can be paused; this one is {program.status}"
        )
    return _set_status(uow, program, "paused", now)


def resume_program(*, uow: MessagingUnitOfWork, workspace_id: str, program_id: str, now: float) -> Program:
    """Send again after a pause."""
    program = get_program(uow=uow, workspace_id=workspace_id, program_id=program_id)
    if program.status != "paused":
        raise ProgramStateConflict(
            f"Only a paused {program.kind} can be resumed; this one is {program.status}"
        )
    return _set_status(uow, program, "active", now)


def archive_program(*, uow: MessagingUnitOfWork, workspace_id: str, program_id: str, now: float) -> Program:
    """Stop for good: pending dispatches are cancelled."""
    program = get_program(uow=uow, workspace_id=workspace_id, program_id=program_id)
    uow.messaging.jobs.cancel_pending(program.id)
    return _set_status(uow, program, "archived", now)


def _set_status(uow: MessagingUnitOfWork, program: Program, status: str, now: float) -> Program:
    program = replace(program, status=status, updated_at=now)
    uow.messaging.programs.update(program)
    uow.commit()
    return program


@dataclass(frozen=True, slots=True)
class Preview:
    """An audience now, a sample of it, and the message rendered for one user."""

    size: int
    reachable: int
    sample: list[str]
    rendered: dict[str, str] | None = None
    render_error: str | None = None


def audience_members(
    *,
    uow: MessagingUnitOfWork,
    indexes: SegmentIndexes,
    membership: MembershipCache,
    workspace_id: str,
    raw_filter: Any,
    now: float,
) -> BitMap:
    """The exact users of an audience filter now (None: every user)."""
    return segments.evaluate_filter(
        uow=uow, indexes=indexes, membership=membership, workspace_id=workspace_id, raw=raw_filter, now=now
    )


def preview_campaign(
    *,
    uow: MessagingUnitOfWork,
    indexes: SegmentIndexes,
    membership: MembershipCache,
    workspace_id: str,
    program_id: str,
    external_id: str | None = None,
    trigger_properties: dict[str, Any] | None = None,
    now: float,
) -> Preview:
    """Exact audience size now, how many are reachable, a sample, and the message for one user."""
    program = get_program(uow=uow, workspace_id=workspace_id, program_id=program_id, kind="campaign")
    spec = campaign_spec(program)
    members = audience_members(
        uow=uow,
        indexes=indexes,
        membership=membership,
        workspace_id=workspace_id,
        raw_filter=audience_filter(spec.audience),
        now=now,
    )
    facts = uow.messaging.facts
    reachable = 0
    nums = list(members)
    for start in range(0, len(nums), 5000):
        for user in facts.users(workspace_id, nums[start : start + 5000]):
            if unreachable_reason(user, spec.channel, spec.audience.subscription) is None:
                reachable += 1
    sample_users = facts.users(workspace_id, nums[:PREVIEW_SAMPLE])
    sample = [u.external_id or u.braze_id for u in sample_users]
    target: UserRow | None = sample_users[0] if sample_users else None
    if external_id is not None:
        found = facts.nums_by_external_ids(workspace_id, [external_id])
        if external_id not in found:
            raise ProgramNotFound(f"No user with external_id {external_id}")
        target = facts.users(workspace_id, [found[external_id]])[0]
    if target is None:
        return Preview(len(members), reachable, sample)
    try:
        rendered = render_preview(spec, program, target, trigger_properties or {})
    except (MessageAborted, RenderFailed) as exc:
        return Preview(len(members), reachable, sample, render_error=str(exc))
    return Preview(len(members), reachable, sample, rendered)


def render_preview(
    spec: CampaignSpec, program: Program, user: UserRow, trigger_properties: dict[str, Any]
) -> dict[str, str]:
    """The campaign's message for one user (tracking links left out)."""
    links = dict.fromkeys(("set_user_to_unsubscribed_url", "unsubscribe_url"), "#unsubscribe")
    values = liquid_values(
        user,
        trigger_properties=trigger_properties,
        links=links,
        campaign={"api_id": program.id, "name": program.name, "dispatch_id": "preview"},
    )
    return render_fields(spec.message, values, prefixed=True)


def program_stats(*, uow: MessagingUnitOfWork, workspace_id: str, program_id: str) -> dict[str, Any]:
    """Per campaign (or per Canvas step): targeted, sent, delivered, bounced, opened, clicked, unsubscribed,
    converted; for a Canvas also entries."""
    program = get_program(uow=uow, workspace_id=workspace_id, program_id=program_id)
    by_step = uow.messaging.ledger.stats(program.id)

    def totals(states: dict[str, int]) -> dict[str, int]:
        sent = sum(
            states.get(s, 0) for s in ("sending", "delivered", "bounced", "soft_bounced", "failed", "unknown")
        )
        return {
            "sent": sent,
            "delivered": states.get("delivered", 0),
            "bounced": states.get("bounced", 0),
            "soft_bounced": states.get("soft_bounced", 0),
            "failed": states.get("failed", 0),
            "aborted": states.get("aborted", 0),
            "in_doubt": states.get("unknown", 0) + states.get("sending", 0),
            "opened": states.get("opened", 0),
            "clicked": states.get("clicked", 0),
            "unsubscribed": states.get("unsubscribed", 0),
            "converted": states.get("converted", 0),
        }

    jobs = uow.messaging.jobs.list(program.id)
    out: dict[str, Any] = {
        "id": program.id,
        "kind": program.kind,
        "name": program.name,
        "status": program.status,
        "targeted": sum(j["targeted"] or 0 for j in jobs),
    }
    if program.kind != "canvas":
        out.update(totals(by_step.get("", {})))
        out["dispatches"] = jobs
    else:
        out["entries"] = uow.messaging.entries.stats(program.id)
        out["steps"] = {step: totals(states) for step, states in sorted(by_step.items())}
    return out
