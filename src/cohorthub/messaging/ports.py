"""What messaging needs from storage and from the network (channels), with in-memory twins."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from cohorthub.currents.envelope import Envelope
from cohorthub.segments.ports import SegmentUnitOfWork


@dataclass(frozen=True, slots=True)
class Program:
    """A stored campaign or Canvas: its definition as JSON and its lifecycle."""

    id: str
    workspace_id: str
    kind: str  # campaign | canvas
    name: str
    status: str  # draft | active | paused | archived
    spec: dict[str, Any]
    created_at: float
    updated_at: float
    first_sent_at: float | None = None
    last_sent_at: float | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A scheduled dispatch of a campaign (or a Canvas's scheduled entry)."""

    id: int
    workspace_id: str
    program_id: str
    dispatch_id: str
    send_id: str | None
    due_at: float
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UserRow:
    """What rendering and reachability need of one user."""

    num: int
    braze_id: str
    external_id: str | None
    email: str | None
    email_subscribe: str | None
    time_zone: str | None
    attributes: dict[str, Any]
    custom_attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SendKey:
    """The ledger key: one message of a program (step) to a user in a dispatch."""

    program_id: str
    step_id: str
    user_num: int
    dispatch_id: str


@dataclass(frozen=True, slots=True)
class SendRow:
    """A ledger entry."""

    id: int
    workspace_id: str
    key: SendKey
    send_id: str | None
    channel: str
    address: str | None
    state: str
    opened_at: float | None = None
    clicked_at: float | None = None
    unsubscribed_at: float | None = None


@dataclass(frozen=True, slots=True)
class ReceivedRow:
    """One message a user was sent, as the ledger holds it (newest first in listings)."""

    id: int
    program_id: str
    step_id: str
    channel: str
    state: str
    created_at: float
    opened_at: float | None = None
    clicked_at: float | None = None
    unsubscribed_at: float | None = None
    converted_at: float | None = None


@dataclass(frozen=True, slots=True)
class EntryRow:
    """A user's journey through a Canvas."""

    id: int
    workspace_id: str
    canvas_id: str
    user_num: int
    step_id: str | None
    step_since: float
    waiting: bool
    properties: dict[str, Any]
    entered_at: float


@dataclass(frozen=True, slots=True)
class Move:
    """Where a journey stands after a visit, and when it is next due (None: not again)."""

    entry_id: int
    step_id: str | None
    since: float
    waiting: bool
    next_at: float | None
    state: str


@dataclass(frozen=True, slots=True)
class EventRow:
    """A custom event (or a purchase: `kind` "purchase", `name` its product id) as the conversion, exit
    and action scanners read it."""

    id: int
    workspace_id: str
    user_num: int
    name: str
    time: float
    properties: dict[str, Any]
    kind: str = "custom"


class ProgramStore(Protocol):
    """Campaign and Canvas definitions."""

    def add(self, program: Program) -> None: ...
    def update(self, program: Program) -> None: ...
    def get(self, workspace_id: str | None, program_id: str) -> Program | None: ...
    def all(self, workspace_id: str, kind: str) -> list[Program]: ...
    def active(self, kind: str) -> list[Program]: ...
    def mark_sent(self, program_id: str, now: float) -> None: ...


class JobStore(Protocol):
    """Durable scheduled dispatches, claimed with a lease (SKIP LOCKED on PostgreSQL)."""

    def add(self, job: Job, *, idem_key: str | None, now: float) -> str: ...
    def find(self, idem_key: str) -> str | None: ...
    def any_due(self, now: float) -> bool: ...
    def claim(self, *, now: float, owner: str, lease_until: float, limit: int) -> list[Job]: ...
    def extend(self, job_id: int, *, owner: str, lease_until: float) -> bool: ...
    def release(self, job_id: int, *, due_at: float) -> None: ...
    def finish(self, job_id: int, *, now: float, targeted: int, note: str) -> None: ...
    def cancel_pending(self, program_id: str) -> int: ...
    def reschedule(
        self, program_id: str, dispatch_id: str, *, due_at: float, payload: dict[str, Any] | None
    ) -> bool: ...
    def cancel(self, program_id: str, dispatch_id: str) -> bool: ...
    def list(self, program_id: str) -> list[dict[str, Any]]: ...


class LedgerStore(Protocol):
    """The send ledger: one row per message, written before the message leaves."""

    def reserve(
        self, workspace_id: str, rows: Sequence[tuple[SendKey, str | None, str, str | None]], *, now: float
    ) -> dict[SendKey, int]: ...
    def existing(self, program_id: str, step_id: str, dispatch_id: str, nums: list[int]) -> set[int]: ...
    def settle(self, outcomes: Iterable[tuple[int, str, str | None]], *, now: float) -> None: ...
    def bounce(self, send_row_id: int, state: str, error: str, *, now: float) -> bool: ...
    def suppress(
        self, workspace_id: str, address: str, reason: str, send_row_id: int, *, now: float
    ) -> None: ...
    def suppressed(self, workspace_id: str, addresses: Sequence[str]) -> set[str]: ...
    def mark_stale(self, program_id: str, dispatch_id: str, *, before: float, now: float) -> int: ...
    def get(self, send_row_id: int) -> SendRow | None: ...
    def touch(self, send_row_id: int, column: str, *, now: float) -> bool: ...
    def recent_counts(
        self, workspace_id: str, nums: list[int], channel: str, since: float
    ) -> dict[int, int]: ...
    def convertible(
        self, workspace_id: str, user_num: int, program_ids: list[str], since: float
    ) -> list[SendRow]: ...
    def take_rate(self, program_id: str, minute: int, wanted: int, limit: int) -> int: ...
    def stats(self, program_id: str) -> dict[str, dict[str, int]]: ...
    def for_user(
        self, workspace_id: str, user_num: int, *, before: tuple[float, int] | None, limit: int
    ) -> list[ReceivedRow]: ...


class EntryStore(Protocol):
    """Canvas entries and their progress."""

    def add_many(self, rows: Sequence[tuple[EntryRow, str]], *, now: float) -> dict[str, int]: ...
    def last_entered(self, canvas_id: str, user_num: int) -> float | None: ...
    def last_entered_many(self, canvas_id: str, nums: list[int]) -> dict[int, float]: ...
    def existing_triggers(self, canvas_id: str, keys: list[str]) -> set[str]: ...
    def any_due(self, now: float) -> bool: ...
    def claim(self, *, now: float, owner: str, lease_until: float, limit: int) -> list[EntryRow]: ...
    def move_many(self, moves: Sequence[Move], *, now: float) -> None: ...
    def active_for_user(self, workspace_id: str, user_num: int) -> list[EntryRow]: ...
    def wake(self, entry_id: int, now: float) -> None: ...
    def convert(self, entry_id: int, now: float) -> bool: ...
    def converted_since(self, canvas_id: str, user_num: int, since: float) -> list[EntryRow]: ...
    def stats(self, canvas_id: str) -> dict[str, int]: ...


class FactStore(Protocol):
    """What messaging reads of users, cohort changes and events, and its cursors."""

    def users(self, workspace_id: str, nums: list[int]) -> list[UserRow]: ...
    def nums_by_external_ids(self, workspace_id: str, ids: list[str]) -> dict[str, int]: ...
    def nums_by_braze_ids(self, workspace_id: str, ids: list[str]) -> dict[str, int]: ...
    def nums_by_aliases(
        self, workspace_id: str, aliases: list[tuple[str, str]]
    ) -> dict[tuple[str, str], int]: ...
    def unsubscribe(self, user_num: int, *, now: float) -> None: ...
    def cohort_entries_after(
        self, workspace_id: str, partner: str, cohort_id: str, after: int, limit: int
    ) -> list[tuple[int, int]]: ...
    def events_after(self, after: int, limit: int) -> list[EventRow]: ...
    def purchases_after(self, after: int, limit: int) -> list[EventRow]: ...
    def max_purchase_id(self) -> int: ...
    def performed(self, user_num: int, name: str, since: float, *, purchase: bool = False) -> bool: ...
    def max_ids(self) -> tuple[int, int]: ...
    def cursor(self, name: str) -> int | None: ...
    def set_cursor(self, name: str, value: int) -> None: ...
    def state(self, name: str) -> str | None: ...
    def set_state(self, name: str, value: str) -> None: ...
    def secret(self, new: str) -> str: ...


class MessagingStore(Protocol):
    """Every messaging store, bound to one transaction."""

    @property
    def programs(self) -> ProgramStore: ...
    @property
    def jobs(self) -> JobStore: ...
    @property
    def ledger(self) -> LedgerStore: ...
    @property
    def entries(self) -> EntryStore: ...
    @property
    def facts(self) -> FactStore: ...


class Outbox(Protocol):
    """Currents events, written in the caller's transaction."""

    def append(self, workspace_id: str, events: Iterable[Envelope], *, now: float) -> int: ...


class MessagingUnitOfWork(SegmentUnitOfWork, Protocol):
    """A transaction that sees messaging, segments, cohorts and the outbox."""

    @property
    def messaging(self) -> MessagingStore: ...
    @property
    def outbox(self) -> Outbox: ...


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """A rendered e-mail ready for SMTP."""

    sender: str
    to: str
    data: bytes  # the whole RFC 5322 message


@dataclass(frozen=True, slots=True)
class OutgoingWebhook:
    """A rendered webhook request."""

    url: str
    method: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a channel did with one message: `delivered`, `bounced`, `soft_bounced` or `failed`."""

    state: str
    detail: str | None = None
    status: int | None = None
    retries: int = 0


class EmailTransport(Protocol):
    """Hands e-mails to an SMTP server (one connection, reused); never raises for SMTP failures."""

    def send(self, messages: Sequence[OutgoingEmail]) -> list[Outcome]: ...
    def close(self) -> None: ...


class WebhookTransport(Protocol):
    """Sends webhook requests with retries; never raises for HTTP or network failures."""

    def send(self, request: OutgoingWebhook) -> Outcome: ...
    def close(self) -> None: ...


@dataclass
class MemoryEmailTransport:
    """The in-memory twin of the SMTP transport: keeps what it was given."""

    sent: list[OutgoingEmail] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    def send(self, messages: Sequence[OutgoingEmail]) -> list[Outcome]:
        """Accept every message except to refused addresses."""
        out = []
        for m in messages:
            if m.to in self.refuse:
                out.append(Outcome("bounced", "550 mailbox unavailable", 550))
            else:
                self.sent.append(m)
                out.append(Outcome("delivered"))
        return out

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class MemoryWebhookTransport:
    """The in-memory twin of the webhook transport."""

    sent: list[OutgoingWebhook] = field(default_factory=list)

    def send(self, request: OutgoingWebhook) -> Outcome:
        """Record the request; answer delivered."""
        self.sent.append(request)
        return Outcome("delivered", status=200)

    def close(self) -> None:
        """Nothing to release."""


#: Opens a unit of work (`readonly=True` for reads that never wait for writers).
UowFactory = Callable[..., AbstractContextManager[MessagingUnitOfWork]]
