"""Sending: render, write the ledger and the Send events, hand to the channel, record the outcome.

The ledger row (state `sending`) and the message's Send event commit in one transaction before the
message leaves; the outcome (Delivery, Bounce, webhook Failure…) commits in a second one. A ledger
key that exists already is never sent again, so a retried job, a restarted worker or a second worker
cannot send a user the same message twice. A worker killed between the two transactions leaves rows
`sending`; they become `unknown` (counted as in doubt, never re-sent) when the job finishes.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from cohorthub.currents.envelope import Envelope
from cohorthub.messaging.events import message_event, user_of
from cohorthub.messaging.liquid import MessageAborted, RenderFailed
from cohorthub.messaging.model import EmailContent, WebhookContent, is_email
from cohorthub.messaging.outgoing import (
    Item,
    channel_of,
    email_of,
    outcome_events,
    render_item,
    webhook_of,
)
from cohorthub.messaging.ports import (
    EmailTransport,
    MessagingUnitOfWork,
    Outcome,
    OutgoingEmail,
    SendKey,
    UowFactory,
    UserRow,
    WebhookTransport,
)
from cohorthub.messaging.tracking import Tracker

log = logging.getLogger("cohorthub.messaging")


@dataclass
class Channels:
    """The transports a dispatcher sends through."""

    email: EmailTransport
    webhook: WebhookTransport


@dataclass(frozen=True, slots=True)
class _Rendered:
    item: Item
    parts: dict[str, str] | None
    abort: str | None = None
    abort_type: str = "liquid_abort_message"


@dataclass
class Tally:
    """What a batch came to."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    aborted: int = 0
    skipped: int = 0
    unreachable: int = 0  # addresses that bounced for good before

    def add(self, other: Tally) -> None:
        """Count another tally in."""
        self.sent += other.sent
        self.delivered += other.delivered
        self.failed += other.failed
        self.aborted += other.aborted
        self.skipped += other.skipped
        self.unreachable += other.unreachable


@dataclass(frozen=True, slots=True)
class _Reserved:
    """A batch whose ledger rows and Send events are committed: ready to go out."""

    workspace_id: str
    todo: list[tuple[int, _Rendered]]
    emails: list[tuple[int, OutgoingEmail]]


@dataclass(frozen=True, slots=True)
class _Sent:
    """A batch the channels are done with: one outcome per message, not yet recorded."""

    batch: _Reserved
    outcomes: list[Outcome]


_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] = (700, 10, 10)


class _FewerCollections:
    """While a pipeline runs, the cyclic garbage collector runs rarely: a batch holds tens of thousands
    of young objects (users, rendered parts, events) that each collection would scan again, for no
    cycles to find (a sixth of the CPU of a campaign went there). Restored when the last pipeline ends."""

    def __enter__(self) -> None:
        global _gc_users, _gc_saved
        with _gc_lock:
            if _gc_users == 0:
                _gc_saved = gc.get_threshold()
                gc.set_threshold(max(_gc_saved[0], 200_000), *_gc_saved[1:])
            _gc_users += 1

    def __exit__(self, *exc: object) -> None:
        global _gc_users
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.set_threshold(*_gc_saved)


class Pipeline:
    """Sends batches one after another: while one batch is on the wire, the next is rendered.

    Each batch costs one write transaction: it records the outcomes of the batch that was on the
    wire together with the ledger rows (and Send events) of the next one, before that one leaves.
    The sending thread only talks to the servers. At most one batch is reserved and not yet
    settled at any time (the one on the wire), so a worker killed mid-way leaves at most one batch
    in doubt.
    """

    def __init__(self, sender: Sender) -> None:
        self._sender = sender
        self._pending: Future[_Sent] | None = None
        self._collections = _FewerCollections()
        self.tally = Tally()

    def submit(self, workspace_id: str, items: Sequence[Item]) -> None:
        """Render this batch, record the previous one's outcomes with its reservation, hand it on."""
        rendered = [self._sender.render(i) for i in items]
        reserved = self._sender.record(workspace_id, rendered, self._landed(), self.tally)
        if reserved is not None:
            self._pending = self._sender.executor().submit(self._sender.transmit, reserved)

    def wait(self) -> None:
        """Until the batch on the wire is settled and its outcomes recorded (errors are raised here)."""
        sent = self._landed()
        if sent is not None:
            self._sender.record(sent.batch.workspace_id, [], sent, self.tally)

    def _landed(self) -> _Sent | None:
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else None

    def __enter__(self) -> Pipeline:
        self._collections.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.wait()
        finally:
            self._collections.__exit__()


class Sender:
    """The send pipeline shared by campaigns, Canvas steps and API sends."""

    def __init__(
        self,
        *,
        uow: UowFactory,
        channels: Channels,
        tracker: Callable[[], Tracker],
        now: Callable[[], float],
        batch_size: int = 500,
    ) -> None:
        self._uow = uow
        self._channels = channels
        self._tracker = tracker
        self._now = now
        self.batch_size = batch_size
        self._executor: ThreadPoolExecutor | None = None

    def executor(self) -> ThreadPoolExecutor:
        """The one thread that hands reserved batches to the channels."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="sender")
        return self._executor

    def close(self) -> None:
        """Stop the sending thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def pipeline(self) -> Pipeline:
        """A pipeline of batches (use as a context manager: leaving it waits for the last batch)."""
        return Pipeline(self)

    def deliver(self, workspace_id: str, items: Sequence[Item]) -> Tally:
        """Send each item at most once (by its ledger key), batch by batch; return the tally.

        Batches grow from 50 to `batch_size`: the first messages leave soon, the rest in bulk.
        """
        start, size = 0, min(50, self.batch_size)
        with self.pipeline() as pipe:
            while start < len(items):
                pipe.submit(workspace_id, items[start : start + size])
                start, size = start + size, min(size * 2, self.batch_size)
        return pipe.tally

    def record(
        self, workspace_id: str, rendered: Sequence[_Rendered], sent: _Sent | None, tally: Tally
    ) -> _Reserved | None:
        """In one transaction: the outcomes of `sent` and their events, then the ledger rows and Send
        (or Abort) events of `rendered`; then build the e-mails of the rows that were new."""
        with self._uow() as uow:
            now = self._now()
            events: list[Envelope] = []
            if sent is not None:
                events = self._settle(uow, sent, tally, now)
                if sent.batch.workspace_id != workspace_id:
                    uow.outbox.append(sent.batch.workspace_id, events, now=now)
                    events = []
            ids = self._reserve(uow, workspace_id, rendered, tally, now, events) if rendered else {}
            if not rendered:
                uow.outbox.append(workspace_id, events, now=now)
            uow.commit()
        todo = [(ids[r.item.key], r) for r in rendered if r.parts is not None and r.item.key in ids]
        if not todo:
            return None
        tracker = self._tracker()
        emails = [
            (i, email_of(r.item, r.parts, row_id, tracker))
            for i, (row_id, r) in enumerate(todo)
            if r.parts is not None and isinstance(r.item.message, EmailContent)
        ]
        return _Reserved(workspace_id, todo, emails)

    def _reserve(
        self,
        uow: MessagingUnitOfWork,
        workspace_id: str,
        rendered: Sequence[_Rendered],
        tally: Tally,
        now: float,
        events: list[Envelope],
    ) -> dict[SendKey, int]:
        """Ledger rows and Send (or Abort) events of a rendered batch; `events` (the previous batch's
        outcomes) are written with them, in one outbox statement."""
        bounced = uow.messaging.ledger.suppressed(
            workspace_id,
            [r.item.user.email for r in rendered if channel_of(r.item) == "email" and r.item.user.email],
        )
        if bounced:
            kept = [
                r
                for r in rendered
                if channel_of(r.item) != "email" or (r.item.user.email or "").lower() not in bounced
            ]
            tally.unreachable += len(rendered) - len(kept)
            rendered = kept
        ids = uow.messaging.ledger.reserve(
            workspace_id,
            [
                (
                    r.item.key,
                    r.item.send_id,
                    channel_of(r.item),
                    r.item.user.email if channel_of(r.item) == "email" else None,
                )
                for r in rendered
            ],
            now=now,
        )
        aborted = []
        for r in rendered:
            row_id = ids.get(r.item.key)
            if row_id is None:
                tally.skipped += 1
                continue
            ch = channel_of(r.item)
            extra = {"dispatch_id": r.item.dispatch_id, "send_id": r.item.send_id}
            if ch == "email":
                extra["email_address"] = r.item.user.email
            if r.parts is None:
                aborted.append((row_id, "aborted", r.abort))
                events.append(
                    message_event(
                        f"users.messages.{ch}.Abort",
                        r.item.source,
                        user_of(r.item.user),
                        time=now,
                        abort_type=r.abort_type,
                        abort_log=r.abort,
                        **extra,
                    )
                )
                tally.aborted += 1
            else:
                events.append(
                    message_event(
                        f"users.messages.{ch}.Send", r.item.source, user_of(r.item.user), time=now, **extra
                    )
                )
        uow.messaging.ledger.settle(aborted, now=now)
        uow.outbox.append(workspace_id, events, now=now)
        return ids

    def _settle(self, uow: MessagingUnitOfWork, sent: _Sent, tally: Tally, now: float) -> list[Envelope]:
        """Record what became of a batch that was on the wire; return its events (for the outbox)."""
        todo = sent.batch.todo
        events = []
        for (_row_id, r), outcome in zip(todo, sent.outcomes, strict=True):
            events.extend(outcome_events(r.item, outcome, now))
            tally.sent += 1
            tally.delivered += outcome.state == "delivered"
            tally.failed += outcome.state != "delivered"
        uow.messaging.ledger.settle(
            [(row_id, o.state, o.detail) for (row_id, _), o in zip(todo, sent.outcomes, strict=True)], now=now
        )
        for program_id in {r.item.source.program_id for _, r in todo}:
            uow.messaging.programs.mark_sent(program_id, now)
        return events

    def transmit(self, batch: _Reserved) -> _Sent:
        """Hand a reserved batch to the channels (the sending thread)."""
        return _Sent(batch, self._send(batch))

    def render(self, item: Item) -> _Rendered:
        """The item's message rendered, or why it is aborted."""
        try:
            return _Rendered(item, render_item(item))
        except MessageAborted as exc:
            return _Rendered(item, None, exc.reason)
        except RenderFailed as exc:
            return _Rendered(item, None, str(exc), "liquid_error")

    def _send(self, batch: _Reserved) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        for i, (_row_id, r) in enumerate(batch.todo):
            m = r.item.message
            if isinstance(m, WebhookContent):
                assert r.parts is not None
                try:
                    outcomes[i] = self._channels.webhook.send(webhook_of(m, r.parts))
                except Exception as exc:  # this request could not be made; the batch's others still are
                    log.exception("messaging: webhook of send %s raised", r.item.send_id)
                    outcomes[i] = Outcome("failed", f"{type(exc).__name__}: {exc}"[:1000])
        if batch.emails:
            sent = self._channels.email.send([e for _, e in batch.emails])
            outcomes.update((i, outcome) for (i, _), outcome in zip(batch.emails, sent, strict=True))
        return [outcomes[i] for i in range(len(batch.todo))]

    def test_send(self, item: Item, address: str) -> Outcome:
        """Send the item's message, rendered for its user, to `address` (no ledger, no events); an e-mail
        to something that is not an address fails before any of it reaches the server."""
        m = item.message
        if isinstance(m, EmailContent) and not is_email(address):
            return Outcome("failed", f"not an e-mail address: {address!r}")
        parts = render_item(item)
        if isinstance(m, EmailContent):
            parts["subject"] = "[TEST] " + parts["subject"]
            user = UserRow(
                item.user.num,
                item.user.braze_id,
                item.user.external_id,
                address,
                item.user.email_subscribe,
                item.user.time_zone,
                item.user.attributes,
                item.user.custom_attributes,
            )
            test_item = Item(item.source, user, item.dispatch_id, m, list_unsubscribe=False)
            return self._channels.email.send([email_of(test_item, parts, 0, self._tracker())])[0]
        return self._channels.webhook.send(webhook_of(m, parts))
