"""The delivery worker: lease batches from the outbox, POST them, record the outcome.

Each connector runs its own loop (a thread in `run`), so a slow or failing endpoint never
delays another. A round is one short transaction that records the previous round's
outcomes and leases the next batches; the sends happen outside any transaction. A lease
that expires (its worker died) makes the batch due again: delivery is at least once.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from cohorthub import clock
from cohorthub.currents.policy import Action, RetryPolicy
from cohorthub.currents.ports import Claim, CurrentsUnitOfWork, Cursor, Resolution, Sender
from cohorthub.currents.wire import batch_body, parse_retry_after, request_headers

log = logging.getLogger("cohorthub.currents")
UowFactory = Callable[[], AbstractContextManager[CurrentsUnitOfWork]]
_WAITING = ("retry", "halt")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Tunables of a worker."""

    lease_seconds: float = 600.0
    poll_interval: float = 0.5
    max_events_per_round: int = 2_000
    refresh_interval: float = 5.0


@dataclass(frozen=True, slots=True)
class RoundReport:
    """What one round did, and when the connector wants its next round."""

    alive: bool
    sent_batches: int
    wake_at: float


@dataclass
class DeliveryWorker:
    """Delivers every connector's events; `step` runs one round, `run` loops until stopped."""

    uow: UowFactory
    sender_factory: Callable[[], Sender]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    now: Callable[[], float] = clock.now
    options: WorkerOptions = field(default_factory=WorkerOptions)
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _pending: dict[str, list[Resolution]] = field(default_factory=dict, repr=False)
    _senders: dict[str, Sender] = field(default_factory=dict, repr=False)

    def step(self, connector_id: str) -> RoundReport:
        """One round for one connector: record outcomes, lease batches, send them."""
        now = self.now()
        with self.uow() as uow:
            cursor = uow.currents.lock_connector(connector_id)
            if cursor is None:
                uow.commit()
                self._forget(connector_id)
                return RoundReport(alive=False, sent_batches=0, wake_at=now)
            pending = self._pending.pop(connector_id, [])
            if pending:
                uow.currents.resolve(connector_id, pending, now=now)
                cursor = uow.currents.lock_connector(connector_id)
                assert cursor is not None
            claims = [] if cursor.connector.paused else self._lease(uow, cursor, now)
            due = uow.currents.next_due_at(connector_id)
            uow.commit()
        if claims:
            self._pending[connector_id] = self._send_all(cursor, claims, self._sender(connector_id), now)
            return RoundReport(alive=True, sent_batches=len(claims), wake_at=now)
        wake = now + self.options.poll_interval
        if due is not None and due > now and (cursor.blocked_until is not None or due < wake):
            wake = due
        return RoundReport(alive=True, sent_batches=0, wake_at=wake)

    def flush(self, connector_id: str) -> None:
        """Record the outcomes still held in memory (when a loop stops)."""
        pending = self._pending.pop(connector_id, [])
        if pending:
            with self.uow() as uow:
                uow.currents.resolve(connector_id, pending, now=self.now())
                uow.commit()

    def run(self, stop: threading.Event, connector_ids: Callable[[], list[str]]) -> None:
        """Deliver until `stop` is set: one thread per connector, the list refreshed periodically."""
        threads: dict[str, threading.Thread] = {}
        while not stop.is_set():
            try:
                ids = connector_ids()
            except Exception:
                log.exception("currents: cannot list connectors")
                ids = []
            for cid in ids:
                thread = threads.get(cid)
                if thread is None or not thread.is_alive():
                    thread = threading.Thread(
                        target=self._loop, args=(cid, stop), name=f"currents-{cid[:8]}", daemon=True
                    )
                    threads[cid] = thread
                    thread.start()
            stop.wait(self.options.refresh_interval)
        for thread in threads.values():
            thread.join()

    def _loop(self, connector_id: str, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    report = self.step(connector_id)
                except Exception:
                    log.exception("currents: round failed for connector %s", connector_id)
                    stop.wait(self.options.poll_interval)
                    continue
                if not report.alive:
                    return
                if not report.sent_batches:
                    stop.wait(max(0.0, report.wake_at - self.now()))
        finally:
            try:
                self.flush(connector_id)
            except Exception:
                log.exception("currents: could not record outcomes for %s", connector_id)
            self._forget(connector_id)

    def _sender(self, connector_id: str) -> Sender:
        sender = self._senders.get(connector_id)
        if sender is None:
            sender = self._senders[connector_id] = self.sender_factory()
        return sender

    def _lease(self, uow: CurrentsUnitOfWork, cursor: Cursor, now: float) -> list[Claim]:
        connector = cursor.connector
        blocked = cursor.blocked_until is not None and cursor.blocked_until > now
        max_batches = 1 if blocked else max(1, self.options.max_events_per_round // connector.batch_size)
        lease_until = now + self.options.lease_seconds
        claims = uow.currents.lease_due(
            connector.id, now=now, limit=max_batches, owner=self.worker_id, lease_until=lease_until
        )
        room = (max_batches - len(claims)) * connector.batch_size
        if not blocked and room > 0:
            claims += uow.currents.claim_new(
                connector, max_events=room, owner=self.worker_id, lease_until=lease_until, now=now
            )
        return claims

    def _send_all(
        self, cursor: Cursor, claims: list[Claim], sender: Sender, started: float
    ) -> list[Resolution]:
        connector = cursor.connector
        headers = request_headers(connector.token)
        out: list[Resolution] = []
        for index, claim in enumerate(claims):
            if not claim.payloads:  # its outbox rows are gone: nothing left to send
                out.append(Resolution("ack", claim.batch_id, 0))
                continue
            result = sender.send(connector.url, headers, batch_body(claim.payloads))
            now = self.now()
            resolution = self.resolve_attempt(claim, result.status, result.error, result.retry_after, now)
            out.append(resolution)
            waiting = resolution.kind in _WAITING
            if waiting or now - started > self.options.lease_seconds / 2:
                later = resolution.next_attempt_at if waiting else now
                rest = claims[index + 1 :]
                out += [Resolution("release", c.batch_id, len(c.seqs), next_attempt_at=later) for c in rest]
                break
        return out

    def resolve_attempt(
        self, claim: Claim, status: int | None, error: str | None, retry_after: str | None, now: float
    ) -> Resolution:
        """Turn one attempt's answer into the resolution the policy decides."""
        size = len(claim.seqs)
        attempts = claim.attempts + 1
        wait = parse_retry_after(retry_after, now=now)
        decision = self.policy.decide(status, attempts, claim.first_failure_at, now, wait, size=size)
        if decision.action is Action.DONE:
            return Resolution("ack", claim.batch_id, size, status=status)
        first = claim.first_failure_at if claim.first_failure_at is not None else now
        message = f"{decision.reason}: {error}" if error else decision.reason
        if decision.action is Action.SPLIT_SINGLE:
            parts: tuple[tuple[int, ...], ...] = tuple((seq,) for seq in claim.seqs)
        elif decision.action is Action.SPLIT_HALF:
            half = (size + 1) // 2
            parts = (claim.seqs[:half], claim.seqs[half:])
        else:
            parts = ()
        kind = {
            Action.RETRY: "retry",
            Action.HALT: "halt",
            Action.SPLIT_SINGLE: "split",
            Action.SPLIT_HALF: "split",
            Action.DROP: "drop",
        }[decision.action]
        if kind == "drop":
            log.warning("currents: dead-lettering %d event(s): %s", size, message)
        return Resolution(
            kind,
            claim.batch_id,
            size,
            attempts=attempts,
            first_failure_at=first,
            next_attempt_at=now + decision.delay,
            parts=parts,
            status=status,
            error=message,
        )

    def _forget(self, connector_id: str) -> None:
        self._pending.pop(connector_id, None)
        sender = self._senders.pop(connector_id, None)
        if sender is not None:
            sender.close()
