"""The delivery worker: lease batches from the outbox, POST them, record the outcome.

Each connector runs its own loop (a thread in `run`), so a slow or failing endpoint never
delays another. A round is one short transaction that records the outcomes of earlier sends
and leases the next batches; the sends happen outside any transaction, several at a time
(`Flight`), and in the loop the next round runs while the last requests are still on the wire.
Leases are short and renewed: while a worker lives it renews the leases of the batches it holds
every `renew_interval` seconds; when it dies they run out within `lease_seconds` and another (or a
restarted) worker sends them again: delivery is at least once. A worker sends a batch only while
its lease is young (`Flight`), so two live workers never send the same batch at once.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial

from cohorthub import clock
from cohorthub.currents.flight import Flight
from cohorthub.currents.outcome import connector_state_after, resolve_attempt
from cohorthub.currents.policy import RetryPolicy
from cohorthub.currents.ports import Claim, CurrentsUnitOfWork, Cursor, Resolution, Sender
from cohorthub.currents.retention import prune_outbox
from cohorthub.currents.wire import request_headers

log = logging.getLogger("cohorthub.currents")
UowFactory = Callable[[], AbstractContextManager[CurrentsUnitOfWork]]


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Tunables of a worker."""

    lease_seconds: float = 20.0  # a dead worker's batches are taken over within this
    renew_interval: float | None = None  # how often a live worker renews its leases (lease / 10)
    poll_interval: float = 0.5
    quiet_poll_max: float = 4.0  # a connector with nothing to send polls less and less often, down to this
    max_events_per_round: int = 2_000
    refresh_interval: float = 5.0
    in_flight: int = 4  # requests on the wire at once per connector (1 keeps batches in order)
    retention_seconds: float | None = None  # prune the outbox (None: never)
    prune_interval: float = 3600.0  # at most one prune per interval, at start and then periodically


@dataclass(frozen=True, slots=True)
class RoundReport:
    """What one round did, and when the connector wants its next round."""

    alive: bool
    sent_batches: int
    wake_at: float
    in_flight: int = 0


@dataclass
class DeliveryWorker:
    """Delivers every connector's events; `step` runs one round, `run` loops until stopped."""

    uow: UowFactory
    sender_factory: Callable[[], Sender]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    now: Callable[[], float] = clock.now
    options: WorkerOptions = field(default_factory=WorkerOptions)
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _pending: dict[str, Flight] = field(default_factory=dict, repr=False)  # unrecorded sends

    def step(self, connector_id: str, *, wait: bool = True, quiet_rounds: int = 0) -> RoundReport:
        """One round for one connector: record earlier outcomes, lease batches, start sending them.

        With `wait` (the default) every earlier send is finished and recorded first; the loop
        passes False, so the round runs while up to `in_flight` requests are still on the wire.
        `quiet_rounds`: the rounds in a row before this one that had nothing to send; with nothing
        to send again, the next round is `poll_interval` doubled that many times later (at most
        `quiet_poll_max`), or when a batch falls due if that is sooner.
        """
        flight = self._flight(connector_id)
        outcomes = flight.collect(keep=0 if wait else self.options.in_flight)
        now = self.now()
        with self._keeping(flight, outcomes), self.uow() as uow:
            cursor = uow.currents.connector_cursor(connector_id)
            if cursor is None:
                uow.commit()
                self._forget(connector_id)
                return RoundReport(alive=False, sent_batches=0, wake_at=now)
            # batches first, the connector row last: a round holds that row only for its end
            tally = uow.currents.settle_batches(connector_id, outcomes, now=now) if outcomes else None
            state = connector_state_after(outcomes, now)
            if "blocked_until" in state:
                cursor = replace(cursor, blocked_until=state["blocked_until"], halted=state["halted"])
            busy = flight.unfinished
            claims = [] if cursor.connector.paused else self._lease(uow, cursor, now, busy, flight.holding)
            if tally is not None:
                uow.currents.record_outcomes(connector_id, tally, state)
            due = None if claims else uow.currents.next_due_at(connector_id)
            uow.commit()
        if claims:
            flight.submit(cursor.connector.url, request_headers(cursor.connector.token), claims, now)
            return RoundReport(
                alive=True, sent_batches=len(claims), wake_at=now, in_flight=busy + len(claims)
            )
        wake = now + self._quiet_wait(quiet_rounds)
        if due is not None and due > now and (cursor.blocked_until is not None or due < wake):
            wake = due
        return RoundReport(alive=True, sent_batches=0, wake_at=wake, in_flight=busy)

    def _quiet_wait(self, quiet_rounds: int) -> float:
        poll = self.options.poll_interval
        return min(poll * float(2 ** min(quiet_rounds, 16)), max(poll, self.options.quiet_poll_max))

    def flush(self, connector_id: str) -> None:
        """Wait for the sends under way and record every outcome still held in memory."""
        flight = self._pending.get(connector_id)
        outcomes = flight.collect() if flight is not None else []
        if flight is None or not outcomes:
            return
        now = self.now()
        with self._keeping(flight, outcomes), self.uow() as uow:
            tally = uow.currents.settle_batches(connector_id, outcomes, now=now)
            uow.currents.record_outcomes(connector_id, tally, connector_state_after(outcomes, now))
            uow.commit()

    def renew_leases(self) -> int:
        """Extend the leases of every batch this worker holds; the number of batches renewed."""
        marks = [(flight, flight.mark()) for flight in list(self._pending.values())]
        now = self.now()
        with self.uow() as uow:
            renewed = uow.currents.renew_leases(
                self.worker_id, now=now, lease_until=now + self.options.lease_seconds
            )
            uow.commit()
        for flight, mark in marks:  # only sends submitted before the renewal began are covered
            flight.renewed(now, mark)
        return renewed

    def run(self, stop: threading.Event, connector_ids: Callable[[], list[str]]) -> None:
        """Deliver until `stop` is set: one thread per connector, the list refreshed periodically."""
        renewer = threading.Thread(target=self._renew_loop, args=(stop,), name="currents-lease", daemon=True)
        renewer.start()
        threads: dict[str, threading.Thread] = {}
        next_prune = self.now()
        while not stop.is_set():
            next_prune = self.prune_if_due(next_prune)
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
        for thread in [*threads.values(), renewer]:
            thread.join()

    def prune_if_due(self, due_at: float) -> float:
        """Prune the outbox when retention is on and `due_at` has come; when the next prune is due."""
        now = self.now()
        if self.options.retention_seconds is None or now < due_at:
            return due_at
        try:
            report = prune_outbox(uow=self.uow, older_than=self.options.retention_seconds, now=now)
            if report.removed:
                log.info("currents: pruned %d outbox events", report.removed)
        except Exception:
            log.exception("currents: outbox prune failed")
        return now + self.options.prune_interval

    def _renew_loop(self, stop: threading.Event) -> None:
        interval = self.options.renew_interval or self.options.lease_seconds / 10
        while not stop.wait(interval):
            try:
                self.renew_leases()
            except Exception:  # a lease not renewed runs out: its batch is released, not sent
                log.exception("currents: could not renew leases")

    def _loop(self, connector_id: str, stop: threading.Event) -> None:
        wait = True
        quiet = 0  # rounds in a row with nothing sent and nothing on the wire
        try:
            while not stop.is_set():
                try:
                    report = self.step(connector_id, wait=wait, quiet_rounds=quiet)
                except Exception:
                    log.exception("currents: round failed for connector %s", connector_id)
                    stop.wait(self.options.poll_interval)
                    continue
                if not report.alive:
                    return
                wait = not report.sent_batches  # nothing new: let the next round record the rest
                if not report.sent_batches and not report.in_flight:
                    quiet += 1
                    stop.wait(max(0.0, report.wake_at - self.now()))
                else:
                    quiet = 0
        finally:
            try:
                self.flush(connector_id)
            except Exception:
                log.exception("currents: could not record outcomes for %s", connector_id)
            self._forget(connector_id)

    @staticmethod
    @contextmanager
    def _keeping(flight: Flight, outcomes: list[Resolution]) -> Iterator[None]:
        """Hand the outcomes back to the flight when their transaction fails (e.g. the database
        was busy), so the next round records them instead of leaving the batches to expire."""
        try:
            yield
        except BaseException:
            flight.give_back(outcomes)
            raise

    def _flight(self, connector_id: str) -> Flight:
        flight = self._pending.get(connector_id)
        if flight is None:
            flight = self._pending[connector_id] = Flight(
                self.sender_factory(),
                width=self.options.in_flight,
                resolve=partial(resolve_attempt, self.policy),
                now=self.now,
                max_age=self.options.lease_seconds / 2,
                name=f"currents-{connector_id[:8]}-send",
            )
        return flight

    def _lease(
        self, uow: CurrentsUnitOfWork, cursor: Cursor, now: float, busy: int, flight_holding: bool
    ) -> list[Claim]:
        connector = cursor.connector
        blocked = cursor.blocked_until is not None and cursor.blocked_until > now
        if (blocked and busy) or flight_holding:  # one probe batch at a time; or a failure to record first
            return []
        width = max(1, self.options.in_flight)
        max_batches = 1 if blocked else max(width, self.options.max_events_per_round // connector.batch_size)
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

    def _forget(self, connector_id: str) -> None:
        flight = self._pending.pop(connector_id, None)
        if flight is not None:
            flight.close()
