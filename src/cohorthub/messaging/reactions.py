"""What recipients do with a message: opens, clicks, unsubscribes (from the signed tracking links)."""

from __future__ import annotations

from cohorthub.currents.envelope import Envelope
from cohorthub.messaging.errors import ProgramNotFound
from cohorthub.messaging.events import Source, message_event, user_of
from cohorthub.messaging.ports import MessagingUnitOfWork, SendRow
from cohorthub.messaging.tracking import Tracker


class InvalidLink(ProgramNotFound):
    """A tracking link whose signature does not match (or whose message is gone): 404."""


def source_of(uow: MessagingUnitOfWork, row: SendRow) -> Source:
    """The campaign, or Canvas and step, a ledger row's message belongs to (for its events)."""
    program = uow.messaging.programs.get(row.workspace_id, row.key.program_id)
    if program is None:
        return Source(row.workspace_id)
    if program.kind == "canvas":
        step = row.key.step_id
        steps = {s.get("id"): s for s in program.spec.get("steps", []) if isinstance(s, dict)}
        return Source(
            row.workspace_id,
            canvas_id=program.id,
            canvas_name=program.name,
            canvas_variation_id=program.spec.get("variation_id"),
            canvas_step_id=step,
            canvas_step_name=str(steps.get(step, {}).get("name", step)),
        )
    return Source(
        row.workspace_id,
        campaign_id=program.id,
        campaign_name=program.name,
        message_variation_id=program.spec.get("message_variation_id"),
    )


def _row(
    uow: MessagingUnitOfWork, tracker: Tracker, action: str, row_id: int, sig: str, url: str = ""
) -> SendRow:
    if not tracker.verify(action, row_id, sig, url):
        raise InvalidLink("Unknown link")
    row = uow.messaging.ledger.get(row_id)
    if row is None:
        raise InvalidLink("Unknown link")
    return row


def row_event(
    uow: MessagingUnitOfWork, row: SendRow, event_type: str, now: float, **extra: object
) -> Envelope | None:
    """An event about a ledger row's message, with its source, user and ids (None: the user is gone)."""
    users = uow.messaging.facts.users(row.workspace_id, [row.key.user_num])
    if not users:
        return None
    return message_event(
        event_type,
        source_of(uow, row),
        user_of(users[0]),
        time=now,
        dispatch_id=row.key.dispatch_id,
        send_id=row.send_id,
        email_address=row.address,
        **extra,
    )


def _record(
    uow: MessagingUnitOfWork, row: SendRow, column: str, event: str, now: float, **extra: object
) -> None:
    first = uow.messaging.ledger.touch(row.id, column, now=now)
    if first or event.endswith("Click"):
        found = row_event(uow, row, event, now, **extra)
        if found is not None:
            uow.outbox.append(row.workspace_id, [found], now=now)
    uow.commit()


def record_open(
    *,
    uow: MessagingUnitOfWork,
    tracker: Tracker,
    row_id: int,
    signature: str,
    user_agent: str | None,
    now: float,
) -> None:
    """The open pixel was loaded: `users.messages.email.Open` (the first time)."""
    row = _row(uow, tracker, "o", row_id, signature)
    _record(
        uow,
        row,
        "opened_at",
        "users.messages.email.Open",
        now,
        user_agent=user_agent,
        is_amp=False,
        machine_open=None,
    )


def record_click(
    *,
    uow: MessagingUnitOfWork,
    tracker: Tracker,
    row_id: int,
    signature: str,
    url: str,
    user_agent: str | None,
    now: float,
) -> str:
    """A tracked link was followed: `users.messages.email.Click` (each time); returns where to redirect."""
    row = _row(uow, tracker, "c", row_id, signature, url)
    _record(
        uow,
        row,
        "clicked_at",
        "users.messages.email.Click",
        now,
        url=url,
        user_agent=user_agent,
        is_amp=False,
        link_id=None,
    )
    return url


def check_unsubscribe(*, uow: MessagingUnitOfWork, tracker: Tracker, row_id: int, signature: str) -> SendRow:
    """The ledger row an unsubscribe link names (or `InvalidLink`)."""
    return _row(uow, tracker, "u", row_id, signature)


def unsubscribe(
    *, uow: MessagingUnitOfWork, tracker: Tracker, row_id: int, signature: str, now: float
) -> None:
    """Set the recipient's global e-mail state to unsubscribed: `users.messages.email.Unsubscribe`."""
    row = _row(uow, tracker, "u", row_id, signature)
    uow.messaging.facts.unsubscribe(row.key.user_num, now=now)
    _record(uow, row, "unsubscribed_at", "users.messages.email.Unsubscribe", now)
