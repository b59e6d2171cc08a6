"""The Braze messaging calls: trigger a campaign or Canvas, send a message, create a send id, exports.

Decisions where Braze's documentation is silent or conflicting (docs/messaging.md lists them):
- Unknown recipients are skipped: the call still answers 201 with a `dispatch_id` and sends them nothing.
- Duplicate recipients get one message; the first occurrence's properties win.
- A repeated call is not sent twice: with an `Idempotency-Key` header, any call with the same key
  returns the first call's `dispatch_id`; without one, an identical body for the same campaign within
  10 minutes does (clients such as braze-client re-send a call that took over 2 s).
- `broadcast: true` with `recipients` is a 400; so is a call with neither.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from cohorthub.messaging import services
from cohorthub.messaging.errors import InvalidProgram, InvalidSendRequest, ProgramNotFound
from cohorthub.messaging.journeys import enter_users
from cohorthub.messaging.model import parse_time
from cohorthub.messaging.ports import Job, MessagingUnitOfWork, Program
from cohorthub.text import unstorable_path

MAX_RECIPIENTS = 50
MAX_PROPERTIES = 50 * 1024
DEDUPE_WINDOW = 600.0
_encoder = msgspec.json.Encoder(order="sorted")


def _fail(message: str, *errors: str) -> InvalidSendRequest:
    return InvalidSendRequest(message, errors=list(errors))


def _storable(body: dict[str, Any]) -> None:
    """Every string of the request can be stored alike on SQLite and PostgreSQL (no NUL)."""
    if found := unstorable_path(body, "body"):
        where, problem = found
        raise _fail("Bad Request", f"{where.removeprefix('body.')} {problem}")


def _properties(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail("Bad Request", f"{name} must be an object")
    if len(_encoder.encode(value)) > MAX_PROPERTIES:
        raise _fail("Bad Request", f"{name} is larger than 50 KB")
    return value


def _send_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 64 or not value.isascii():
        raise _fail("Bad Request", "send_id must be an ASCII string of at most 64 characters")
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if isinstance(value, str) and value.lower() in ("true", "false"):  # doc examples send "false"
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise _fail("Bad Request", f"{name} must be true or false")
    return value


def resolve_recipients(
    uow: MessagingUnitOfWork, workspace_id: str, recipients: Any, props_key: tuple[str, ...]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Recipients as [{"num", "trigger_properties"}] (known users, first occurrence), and non-fatal errors."""
    if not isinstance(recipients, list):
        raise _fail("Bad Request", "recipients must be an array")
    if len(recipients) > MAX_RECIPIENTS:
        raise _fail("The max number of external_ids and aliases per request was exceeded")
    wanted: list[tuple[str, Any, dict[str, Any]]] = []
    for i, r in enumerate(recipients):
        if not isinstance(r, dict):
            raise _fail("Bad Request", f"recipients[{i}] must be an object")
        if r.get("send_to_existing_only") is False:
            raise _fail("Bad Request", f"recipients[{i}]: send_to_existing_only false is not supported")
        props: dict[str, Any] = {}
        for key in props_key:
            props.update(_properties(r.get(key), f"recipients[{i}].{key}"))
        if isinstance(r.get("external_user_id"), str) and r["external_user_id"]:
            wanted.append(("external", r["external_user_id"], props))
        elif isinstance(r.get("user_alias"), dict):
            alias = r["user_alias"]
            if not isinstance(alias.get("alias_name"), str) or not isinstance(alias.get("alias_label"), str):
                raise _fail("Bad Request", f"recipients[{i}].user_alias needs alias_name and alias_label")
            wanted.append(("alias", (alias["alias_label"], alias["alias_name"]), props))
        else:
            raise _fail("Bad Request", f"recipients[{i}] needs external_user_id or user_alias")
    facts = uow.messaging.facts
    by_external = facts.nums_by_external_ids(workspace_id, [str(w[1]) for w in wanted if w[0] == "external"])
    by_alias = facts.nums_by_aliases(workspace_id, [w[1] for w in wanted if w[0] == "alias"])
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    errors: list[str] = []
    for kind, ident, props in wanted:
        num = by_external.get(ident) if kind == "external" else by_alias.get(ident)
        if num is None:
            errors.append(f"unknown user: {ident if kind == 'external' else list(ident)}")
            continue
        if num not in seen:
            seen.add(num)
            out.append({"num": num, "trigger_properties": props})
    return out, errors


def _idem_key(workspace_id: str, scope: str, body: Any, key: str | None, now: float, shift: int = 0) -> str:
    if key:
        raw = f"{workspace_id}:{scope}:key:{key}"
    else:
        window = int(now // DEDUPE_WINDOW) - shift
        raw = f"{workspace_id}:{scope}:{window}:" + _encoder.encode(body).decode()
    return "api:" + hashlib.sha256(raw.encode()).hexdigest()


def _repeat_keys(
    workspace_id: str, scope: str, body: Any, key: str | None, now: float
) -> tuple[str, list[str]]:
    """This call's dedupe key, and the keys a call it repeats was stored under: without a client key, the
    same body in the previous window (a retry at 12:10:01 of a call made at 12:09:59 is still a repeat)."""
    earlier = [] if key else [_idem_key(workspace_id, scope, body, None, now, shift=1)]
    return _idem_key(workspace_id, scope, body, key, now), earlier


def _queue(
    uow: MessagingUnitOfWork,
    program: Program,
    payload: dict[str, Any],
    send_id: str | None,
    body: Any,
    idempotency_key: str | None,
    now: float,
    due: float | None = None,
) -> str:
    jobs = uow.messaging.jobs
    key, repeats = _repeat_keys(program.workspace_id, program.id, body, idempotency_key, now)
    if earlier := next(filter(None, map(jobs.find, repeats)), None):
        return earlier
    job = Job(0, program.workspace_id, program.id, services.new_dispatch_id(), send_id, due or now, payload)
    return jobs.add(job, idem_key=key, now=now)


def _campaign_call(
    uow: MessagingUnitOfWork, workspace_id: str, body: Any
) -> tuple[Program, dict[str, Any], str | None, list[str]]:
    """The API campaign a trigger call names, its dispatch payload, its send id and non-fatal errors."""
    if not isinstance(body, dict):
        raise _fail("Bad Request", "the body must be a JSON object")
    _storable(body)
    campaign_id = body.get("campaign_id")
    if not isinstance(campaign_id, str) or not campaign_id:
        raise _fail("Invalid Campaign ID", "campaign_id is required")
    program = uow.messaging.programs.get(workspace_id, campaign_id)
    if program is None or program.kind != "campaign":
        raise _fail("Invalid Campaign ID", f"no campaign with id {campaign_id}")
    spec = services.campaign_spec(program)
    if spec.delivery.type != "api":
        raise _fail("Invalid Campaign ID", "the campaign is not API-triggered")
    if program.status != "active":
        raise _fail("Invalid Campaign ID", f"the campaign is {program.status}")
    if body.get("audience") is not None:
        raise _fail(
            "Bad Request", "connected audience filters are not supported; give recipients or broadcast"
        )
    if body.get("attachments"):
        raise _fail("Bad Request", "attachments are not supported")
    send_id = _send_id(body.get("send_id"))
    common = _properties(body.get("trigger_properties"), "trigger_properties")
    payload, errors = _audience_payload(uow, workspace_id, body, common, ("trigger_properties",))
    return program, payload, send_id, errors


def _audience_payload(
    uow: MessagingUnitOfWork,
    workspace_id: str,
    body: dict[str, Any],
    common: dict[str, Any],
    props_keys: tuple[str, ...],
) -> tuple[dict[str, Any], list[str]]:
    """A dispatch's payload: `broadcast` (with the call's properties) or the resolved recipients (each
    with the call's properties overlaid by its own); and the non-fatal errors."""
    broadcast = _flag(body, "broadcast")
    recipients = body.get("recipients")
    if broadcast and recipients:
        raise _fail("Bad Request", "broadcast cannot be true when recipients are given")
    if broadcast:
        return {"broadcast": True, "trigger_properties": common}, []
    if not recipients:
        raise _fail("No Recipients", "give recipients, or broadcast: true")
    resolved, errors = resolve_recipients(uow, workspace_id, recipients, props_keys)
    for r in resolved:
        r["trigger_properties"] = {**common, **r["trigger_properties"]}
    return {"recipients": resolved}, errors


def _answer(dispatch_id: str, send_id: str | None, errors: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"dispatch_id": dispatch_id, "message": "success"}
    if send_id:
        out["send_id"] = send_id
    if errors:
        out["errors"] = errors
    return out


def trigger_campaign(
    *, uow: MessagingUnitOfWork, workspace_id: str, body: Any, idempotency_key: str | None = None, now: float
) -> dict[str, Any]:
    """`POST /campaigns/trigger/send`: queue an API-triggered campaign's dispatch; 201 means durable."""
    program, payload, send_id, errors = _campaign_call(uow, workspace_id, body)
    dispatch_id = _queue(uow, program, payload, send_id, body, idempotency_key, now)
    uow.commit()
    return _answer(dispatch_id, send_id, errors)


def _schedule_time(raw: Any, now: float) -> float:
    """The `schedule` object's time (`time` only: local and optimal times are not supported)."""
    if not isinstance(raw, dict) or "time" not in raw:
        raise _fail("Bad Request", "schedule must be an object with a time")
    for flag in ("in_local_time", "at_optimal_time"):
        if raw.get(flag) not in (None, False, "false"):
            raise _fail("Bad Request", f"schedule.{flag} is not supported; give a time")
    try:
        when = parse_time(raw["time"], "schedule.time")
    except InvalidProgram as exc:
        raise _fail("Bad Request", str(exc)) from exc
    if when < now:
        raise _fail("Bad Request", "schedule.time is in the past")
    return when


def schedule_campaign(
    *, uow: MessagingUnitOfWork, workspace_id: str, body: Any, idempotency_key: str | None = None, now: float
) -> dict[str, Any]:
    """`POST /campaigns/trigger/schedule/create`: a trigger call sent at `schedule.time`; its `schedule_id`
    is its dispatch id."""
    program, payload, send_id, errors = _campaign_call(uow, workspace_id, body)
    due = _schedule_time(body.get("schedule"), now)
    dispatch_id = _queue(uow, program, payload, send_id, body, idempotency_key, now, due)
    uow.commit()
    return {**_answer(dispatch_id, send_id, errors), "schedule_id": dispatch_id}


def _scheduled_program(
    uow: MessagingUnitOfWork, workspace_id: str, body: Any, kind: str
) -> tuple[Program, str]:
    if not isinstance(body, dict):
        raise _fail("Bad Request", "the body must be a JSON object")
    _storable(body)
    name = "Campaign" if kind == "campaign" else "Canvas"
    program_id, schedule_id = body.get(f"{kind}_id"), body.get("schedule_id")
    if not isinstance(program_id, str) or not program_id:
        raise _fail(f"Invalid {name} ID", f"{kind}_id is required")
    if not isinstance(schedule_id, str) or not schedule_id:
        raise _fail("Bad Request", "schedule_id is required")
    program = uow.messaging.programs.get(workspace_id, program_id)
    if program is None or program.kind != kind:
        raise _fail(f"Invalid {name} ID", f"no {name} with id {program_id}")
    return program, schedule_id


def update_schedule(
    *, uow: MessagingUnitOfWork, workspace_id: str, body: Any, kind: str, now: float
) -> dict[str, Any]:
    """`POST /campaigns/trigger/schedule/update` (and Canvas's): move a scheduled call not yet sent (the
    whole schedule is replaced); 404 when there is none."""
    program, schedule_id = _scheduled_program(uow, workspace_id, body, kind)
    due = _schedule_time(body.get("schedule"), now)
    if not uow.messaging.jobs.reschedule(program.id, schedule_id, due_at=due, payload=None):
        raise ProgramNotFound(f"No scheduled call {schedule_id} waiting to be sent")
    uow.commit()
    return {"message": "success"}


def delete_schedule(*, uow: MessagingUnitOfWork, workspace_id: str, body: Any, kind: str) -> dict[str, Any]:
    """`POST /campaigns/trigger/schedule/delete` (and Canvas's): cancel a scheduled call not yet sent."""
    program, schedule_id = _scheduled_program(uow, workspace_id, body, kind)
    if not uow.messaging.jobs.cancel(program.id, schedule_id):
        raise ProgramNotFound(f"No scheduled call {schedule_id} waiting to be sent")
    uow.commit()
    return {"message": "success"}


def schedule_canvas(
    *, uow: MessagingUnitOfWork, workspace_id: str, body: Any, idempotency_key: str | None = None, now: float
) -> dict[str, Any]:
    """`POST /canvas/trigger/schedule/create`: enter the recipients (or the entry audience) at
    `schedule.time`; its `schedule_id` is its dispatch id. Only an active API Canvas can be scheduled."""
    program, _spec = _api_canvas(uow, workspace_id, body)
    if program.status != "active":
        raise _fail("Invalid Canvas ID", f"the Canvas is {program.status}")
    due = _schedule_time(body.get("schedule"), now)
    common = _canvas_properties(body)
    payload, errors = _audience_payload(
        uow, workspace_id, body, common, ("canvas_entry_properties", "context")
    )
    dispatch_id = _queue(uow, program, payload, None, body, idempotency_key, now, due)
    uow.commit()
    return {**_answer(dispatch_id, None, errors), "schedule_id": dispatch_id}


def _api_canvas(uow: MessagingUnitOfWork, workspace_id: str, body: Any) -> tuple[Program, Any]:
    if not isinstance(body, dict):
        raise _fail("Bad Request", "the body must be a JSON object")
    _storable(body)
    canvas_id = body.get("canvas_id")
    if not isinstance(canvas_id, str) or not canvas_id:
        raise _fail("Invalid Canvas ID", "canvas_id is required")
    program = uow.messaging.programs.get(workspace_id, canvas_id)
    if program is None or program.kind != "canvas":
        raise _fail("Invalid Canvas ID", f"no Canvas with id {canvas_id}")
    spec = services.canvas_spec(program)
    if spec.entry.type != "api":
        raise _fail("Invalid Canvas ID", "the Canvas is not API-triggered")
    return program, spec


def _canvas_properties(body: dict[str, Any]) -> dict[str, Any]:
    """`canvas_entry_properties` and `context` (which wins)."""
    return {
        **_properties(body.get("canvas_entry_properties"), "canvas_entry_properties"),
        **_properties(body.get("context"), "context"),
    }


def trigger_canvas(
    *, uow: MessagingUnitOfWork, workspace_id: str, body: Any, idempotency_key: str | None = None, now: float
) -> dict[str, Any]:
    """`POST /canvas/trigger/send`: enter the recipients (or the whole entry audience) into an API Canvas."""
    program, spec = _api_canvas(uow, workspace_id, body)
    dispatch_id = services.new_dispatch_id()
    if program.status in ("paused", "archived", "draft"):
        notice = {
            "paused": "The Canvas is paused. Resume the Canvas to ensure trigger requests will take effect.",
            "archived": (
                "The Canvas is archived. Unarchive the Canvas to ensure trigger requests will take effect."
            ),
            "draft": (
                "The Canvas is not launched. Launch the Canvas to ensure trigger requests will take effect."
            ),
        }[program.status]
        return {"notice": notice, "dispatch_id": dispatch_id, "message": "success"}
    common = _canvas_properties(body)
    broadcast = _flag(body, "broadcast")
    recipients = body.get("recipients")
    if broadcast and recipients:
        raise _fail("Bad Request", "broadcast cannot be true when recipients are given")
    if broadcast:
        dispatch_id = _queue(uow, program, {"broadcast": True}, None, body, idempotency_key, now)
        uow.commit()
        return {"dispatch_id": dispatch_id, "message": "success"}
    if not recipients:
        raise _fail("No Recipients", "give recipients, or broadcast: true")
    resolved, errors = resolve_recipients(
        uow, workspace_id, recipients, ("canvas_entry_properties", "context")
    )
    key, repeats = _repeat_keys(workspace_id, program.id, body, idempotency_key, now)
    enter_users(
        uow,
        program,
        spec,
        [r["num"] for r in resolved],
        trigger=key[:40],  # "api:" and 36 hex digits
        properties=common,
        per_user={r["num"]: r["trigger_properties"] for r in resolved},
        repeat_of=[k[:40] for k in repeats],
        now=now,
    )
    uow.commit()
    out: dict[str, Any] = {"dispatch_id": dispatch_id, "message": "success"}
    if errors:
        out["errors"] = errors
    return out


def send_messages(
    *, uow: MessagingUnitOfWork, workspace_id: str, body: Any, idempotency_key: str | None = None, now: float
) -> dict[str, Any]:
    """`POST /messages/send`: an e-mail or webhook given in the request, to users or a segment."""
    if not isinstance(body, dict):
        raise _fail("Bad Request", "the body must be a JSON object")
    _storable(body)
    messages = body.get("messages")
    if not isinstance(messages, dict) or not messages:
        raise _fail("No message to send")
    unsupported = sorted(set(messages) - {"email", "webhook"})
    if unsupported:
        raise _fail("Bad Request", "only email and webhook messages are supported: " + ", ".join(unsupported))
    external = body.get("external_user_ids") or []
    aliases = body.get("user_aliases") or []
    segment_id = body.get("segment_id")
    broadcast = _flag(body, "broadcast")
    if not isinstance(external, list) or not isinstance(aliases, list):
        raise _fail("Bad Request", "external_user_ids and user_aliases must be arrays")
    if len(external) + len(aliases) > MAX_RECIPIENTS:
        raise _fail("The max number of external_ids and aliases per request was exceeded")
    if not (external or aliases or segment_id or broadcast):
        raise _fail("No Recipients", "give external_user_ids, user_aliases or segment_id")
    if not broadcast and not (external or aliases) and segment_id is None:
        raise _fail("Bad Request", "broadcast must be true when no users are given")
    state = body.get("recipient_subscription_state", "subscribed")
    send_id = _send_id(body.get("send_id"))
    dispatch_id = ""
    recipients = [{"external_user_id": e} for e in external] + [{"user_alias": a} for a in aliases]
    resolved, errors = resolve_recipients(uow, workspace_id, recipients, ()) if recipients else ([], [])
    for channel, message in sorted(messages.items()):
        scope = f"messages:{channel}"
        key, repeats = _repeat_keys(workspace_id, scope, body, idempotency_key, now)
        # a repeated call (this window, or the previous one without a key) queues nothing, not even a program
        earlier = next(filter(None, map(uow.messaging.jobs.find, [key, *repeats])), None)
        if earlier:
            dispatch_id = earlier
            continue
        spec = {
            "name": "API message",
            "channel": channel,
            channel: message,
            "audience": {"segment_ids": [segment_id] if segment_id else [], "subscription": state},
            "delivery": {"type": "api"},
        }
        try:
            program = services.create_program(
                uow=uow, workspace_id=workspace_id, kind="message", raw=spec, now=now
            )
        except InvalidProgram as exc:
            raise _fail("Bad Request", f"messages.{exc.message}") from exc
        payload: dict[str, Any] = {"recipients": resolved} if recipients else {"broadcast": True}
        job = Job(
            0, workspace_id, program.id, dispatch_id or services.new_dispatch_id(), send_id, now, payload
        )
        dispatch_id = uow.messaging.jobs.add(job, idem_key=key, now=now)
    uow.commit()
    out: dict[str, Any] = {"dispatch_id": dispatch_id, "message": "success"}
    if errors:
        out["errors"] = errors
    return out


def create_send_id(*, uow: MessagingUnitOfWork, workspace_id: str, body: Any) -> dict[str, Any]:
    """`POST /sends/id/create`: a send id for an API campaign (the given one, checked, or a new one)."""
    if isinstance(body, dict):
        _storable(body)
    if not isinstance(body, dict) or not isinstance(body.get("campaign_id"), str):
        raise _fail("Invalid Campaign ID", "campaign_id is required")
    program = uow.messaging.programs.get(workspace_id, body["campaign_id"])
    if program is None or program.kind != "campaign":
        raise _fail("Invalid Campaign ID", f"no campaign with id {body['campaign_id']}")
    send_id = _send_id(body.get("send_id")) or services.new_dispatch_id()
    return {"message": "success", "send_id": send_id}


def export_list(
    programs: list[Program], *, page: int, descending: bool, edited_after: float | None
) -> list[Program]:
    """One page (100) of programs sorted by creation, optionally edited after a time."""
    chosen = [p for p in programs if edited_after is None or p.updated_at > edited_after]
    chosen.sort(key=lambda p: (p.created_at, p.id), reverse=descending)
    return chosen[page * 100 : (page + 1) * 100]


def program_or_404(uow: MessagingUnitOfWork, workspace_id: str, program_id: Any, kind: str) -> Program:
    """The program for an export call, or a 400 naming the id."""
    if not isinstance(program_id, str) or not program_id:
        raise _fail("Bad Request", f"{kind}_id is required")
    program = uow.messaging.programs.get(workspace_id, program_id)
    if program is None or program.kind != kind:
        raise ProgramNotFound(f"No {kind} with id {program_id}")
    return program
