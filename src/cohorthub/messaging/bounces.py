"""Bounces reported after the SMTP session: delivery status notifications (RFC 3464).

A server that took a message may find later that it cannot deliver it and mail a DSN to the
message's envelope sender. Each message's envelope sender (return path) carries its ledger id and a
signature (`Tracker.return_path`: `news+cb42-1f0c…@shop.test`), so a DSN names its message by the
address it was sent to, whatever its content says, and cannot be forged for another message.

A permanent failure (`Action: failed`, status 5.x.x) records `users.messages.email.Bounce`, sets the
ledger row `bounced` and marks the address so that later sends skip it as unreachable; a transient
one (failed with 4.x.x) records `users.messages.email.SoftBounce` (`soft_bounced`); a delay notice
(`Action: delayed`) records `users.messages.email.Deferral`. Events go to the outbox in the
transaction that updates the ledger. Anything else (no tag of ours, a bad signature, an unknown
message, not a DSN, a success notice, a repeated report) is ignored and counted.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses

from cohorthub.messaging.ports import MessagingUnitOfWork, SendRow
from cohorthub.messaging.reactions import row_event
from cohorthub.messaging.tracking import Tracker

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPORTS = ("message/delivery-status", "message/global-delivery-status")
#: Headers that name where a DSN was delivered, when the envelope is not known (the HTTP endpoint).
_DELIVERED_TO = ("delivered-to", "x-original-to", "envelope-to", "to")
#: The counter of ignored reports (in the messaging cursors).
IGNORED_COUNTER = "bounces.ignored"


@dataclass(frozen=True, slots=True)
class Report:
    """One recipient's fields of a DSN."""

    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # e.g. 5.1.1 ("" when absent)
    recipient: str | None
    diagnostic: str | None

    @property
    def kind(self) -> str | None:
        """`Bounce`, `SoftBounce`, `Deferral`, or None (nothing went wrong)."""
        if self.action == "delayed":
            return "Deferral"
        if self.action != "failed":
            return None
        return "SoftBounce" if self.status.startswith("4") else "Bounce"

    @property
    def reason(self) -> str:
        """The server's words (the diagnostic code, else the status)."""
        return self.diagnostic or self.status or self.action


@dataclass(frozen=True, slots=True)
class BounceResult:
    """What a received report came to: `bounced`, `soft_bounced`, `deferred` or `ignored` (with why)."""

    outcome: str
    reason: str
    send_row_id: int | None = None


def _address(value: str | None) -> str | None:
    """`rfc822; user@example.com` → `user@example.com`."""
    if not value:
        return None
    text = str(value).partition(";")[2] if ";" in str(value) else str(value)
    text = text.strip().strip("<>").strip()
    return text or None


def _storable(text: str) -> str:
    """The report's words as text both stores hold: no NUL, no lone surrogate (undecodable bytes)."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else ""
    return [
        email.message_from_string(b.strip() + "\n") for b in re.split(r"\r?\n\s*\r?\n", text) if b.strip()
    ]


def parse_dsn(raw: bytes) -> list[Report]:
    """The per-recipient reports of a DSN (`multipart/report; report-type=delivery-status`); [] when the
    message is not one."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except (ValueError, TypeError, LookupError):
        return []
    if message.get_content_type() != "multipart/report":
        return []
    reports: list[Report] = []
    for part in message.walk():
        if part.get_content_type() not in _REPORTS:
            continue
        for block in _blocks(part)[1:]:  # the first block holds the per-message fields
            action = str(block.get("Action", "")).strip().lower()
            if not action:
                continue
            found = _STATUS.search(str(block.get("Status", "")))
            reports.append(
                Report(
                    action=action.split()[0],
                    status=".".join(found.groups()) if found else "",
                    recipient=_address(block.get("Final-Recipient"))
                    or _address(block.get("Original-Recipient")),
                    diagnostic=_storable(
                        " ".join(str(_address(block.get("Diagnostic-Code")) or "").split())[:1000]
                    )
                    or None,
                )
            )
    return reports


def _tagged_row(tracker: Tracker, raw: bytes, recipients: list[str]) -> tuple[int, str] | None:
    """The ledger id named by the first return path of ours among the envelope recipients (or, without
    an envelope, the headers that say where the DSN was delivered), with that address."""
    candidates = list(recipients)
    if not candidates:
        headers = email.message_from_bytes(raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0] + b"\n\n")
        for name in _DELIVERED_TO:
            candidates += [a for _, a in getaddresses([str(v) for v in headers.get_all(name, [])]) if a]
    for address in candidates:
        row_id = tracker.bounced_row(address.strip().strip("<>"))
        if row_id is not None:
            return row_id, address
    return None


def _pick(reports: list[Report], row: SendRow) -> Report | None:
    """The report about the row's address (else the first one that is a failure or a delay)."""
    failing = [r for r in reports if r.kind is not None]
    mine = [r for r in failing if r.recipient and row.address and r.recipient.lower() == row.address.lower()]
    chosen = mine or failing
    return chosen[0] if chosen else None


def _ignore(uow: MessagingUnitOfWork, reason: str, row_id: int | None = None) -> BounceResult:
    facts = uow.messaging.facts
    facts.set_cursor(IGNORED_COUNTER, (facts.cursor(IGNORED_COUNTER) or 0) + 1)
    uow.commit()
    return BounceResult("ignored", reason, row_id)


def record_bounce(
    *,
    uow: MessagingUnitOfWork,
    tracker: Tracker,
    raw: bytes,
    recipients: list[str],
    now: float,
    workspace_id: str | None = None,
) -> BounceResult:
    """Record a received DSN (`recipients`: the envelope's, [] when unknown); commits. With
    `workspace_id` (an authenticated HTTP call), a report about another workspace's message is ignored."""
    tagged = _tagged_row(tracker, raw, recipients)
    if tagged is None:
        return _ignore(uow, "not addressed to a return path of ours (unknown or forged)")
    row_id, return_path = tagged
    row = uow.messaging.ledger.get(row_id)
    if (
        row is None
        or row.channel != "email"
        or (workspace_id is not None and row.workspace_id != workspace_id)
    ):
        return _ignore(uow, "no such message", row_id)
    report = _pick(parse_dsn(raw), row)
    if report is None or report.kind is None:
        return _ignore(uow, "not a delivery failure or delay notification", row_id)
    if report.kind == "Deferral" and row.state == "bounced":
        return _ignore(uow, "the message bounced already", row_id)
    if report.kind != "Deferral":
        state = "bounced" if report.kind == "Bounce" else "soft_bounced"
        if not uow.messaging.ledger.bounce(row.id, state, report.reason, now=now):
            return _ignore(uow, "already recorded", row_id)
        if state == "bounced" and row.address:
            uow.messaging.ledger.suppress(row.workspace_id, row.address, report.reason, row.id, now=now)
    extra: dict[str, object] = {"esp": "smtp", "from_domain": return_path.rpartition("@")[2].lower()}
    if report.kind == "Deferral":
        extra["deferral_reason"] = report.reason
        extra["recipient_domain"] = (row.address or "").rpartition("@")[2].lower() or None
    else:
        extra["bounce_reason"] = report.reason
    event = row_event(uow, row, f"users.messages.email.{report.kind}", now, **extra)
    if event is not None:
        uow.outbox.append(row.workspace_id, [event], now=now)
    uow.commit()
    outcome = {"Bounce": "bounced", "SoftBounce": "soft_bounced", "Deferral": "deferred"}[report.kind]
    return BounceResult(outcome, report.reason, row.id)


def ignored_count(uow: MessagingUnitOfWork) -> int:
    """How many received reports were ignored so far."""
    return uow.messaging.facts.cursor(IGNORED_COUNTER) or 0
