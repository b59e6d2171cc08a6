"""The sends of one connector that are in flight, and their outcomes until they are recorded.

Up to `width` requests are on the wire at once (threads sharing one keep-alive pool), so the
receiver works on one batch while the next is sent and the database round runs. Until the
endpoint has answered 2xx (and again after it asked to wait), requests go one at a time in
lease order: a failing endpoint sees one request, not `width`. Once a send is told to wait
(5xx, 429, network error, 401/403/404), every batch not yet sent is released until then.

A batch is sent only while its lease is young: leased (or renewed, `renewed`) at most `max_age`
seconds ago, so the send ends before the lease does. Otherwise it is released, not sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from cohorthub.currents.outcome import WAITING
from cohorthub.currents.ports import Claim, Resolution, Sender, SendResult
from cohorthub.currents.wire import batch_body

log = logging.getLogger("cohorthub.currents")
Resolve = Callable[[Claim, SendResult, float], Resolution]


class Flight:
    """A bounded, ordered-when-unhealthy send pool for one connector."""

    def __init__(
        self,
        sender: Sender,
        *,
        width: int,
        resolve: Resolve,
        now: Callable[[], float],
        max_age: float,
        name: str = "currents",
    ) -> None:
        self._sender = sender
        self._resolve = resolve
        self._now = now
        self._max_age = max_age  # a batch leased (or renewed) longer ago than this is released, not sent
        self._pool = ThreadPoolExecutor(max_workers=max(1, width), thread_name_prefix=name)
        self._cond = threading.Condition()
        self._done: list[Resolution] = []
        self._unfinished = 0
        self._tickets = 0  # submitted sends, numbered in lease order
        self._started = 0  # sends that took their turn
        self._active = 0  # requests on the wire
        self._healthy = False  # the last answer that mattered was 2xx
        self._hold: float | None = None  # a send was told to wait until then
        self._anchors: dict[int, float] = {}  # ticket -> when its lease was taken or last renewed

    @property
    def unfinished(self) -> int:
        """Sends submitted whose outcome is not known yet."""
        with self._cond:
            return self._unfinished

    @property
    def holding(self) -> bool:
        """True when a send was told to wait and that outcome is not recorded yet."""
        with self._cond:
            return self._hold is not None

    def submit(self, url: str, headers: dict[str, str], claims: Sequence[Claim], leased_at: float) -> None:
        """Send the claims in the background, in lease order."""
        with self._cond:
            first = self._tickets
            self._tickets += len(claims)
            self._unfinished += len(claims)
            self._anchors.update((first + offset, leased_at) for offset in range(len(claims)))
        for offset, claim in enumerate(claims):
            self._pool.submit(self._run, first + offset, url, headers, claim)

    def mark(self) -> int:
        """The number of sends submitted so far: a lease renewal that starts now covers these."""
        with self._cond:
            return self._tickets

    def renewed(self, at: float, through: int) -> None:
        """The leases of the sends before `through` (a `mark`) were renewed at `at`.

        Only a lease still young counts as renewed: one older than `max_age` may have run out in
        between (another worker may hold it now), so its batch is released, not sent.
        """
        with self._cond:
            for ticket, anchor in self._anchors.items():
                if ticket < through and at - anchor <= self._max_age:
                    self._anchors[ticket] = max(anchor, at)

    def collect(self, *, keep: int = 0) -> list[Resolution]:
        """Wait until at most `keep` sends are unfinished; hand over the outcomes known so far."""
        with self._cond:
            while self._unfinished > keep:
                self._cond.wait()
            done, self._done = self._done, []
            if self._unfinished == 0:
                self._hold = None  # every outcome is handed over: the next round knows the state
            return done

    def give_back(self, outcomes: Sequence[Resolution]) -> None:
        """Keep outcomes that could not be recorded, for the next round to record."""
        with self._cond:
            self._done[:0] = outcomes

    def close(self) -> None:
        """Finish the sends under way and release the pool and the sender."""
        self._pool.shutdown(wait=True)
        self._sender.close()

    def _run(self, ticket: int, url: str, headers: dict[str, str], claim: Claim) -> None:
        resolution: Resolution | None = None
        try:
            resolution = self._attempt(ticket, url, headers, claim)
        except Exception:  # the batch stays leased; it is sent again when the lease expires
            log.exception("currents: send of batch %s failed", claim.batch_id)
        finally:
            with self._cond:
                self._unfinished -= 1
                self._anchors.pop(ticket, None)
                if resolution is not None:
                    self._done.append(resolution)
                self._cond.notify_all()

    def _attempt(self, ticket: int, url: str, headers: dict[str, str], claim: Claim) -> Resolution:
        with self._cond:
            while ticket != self._started or not (self._healthy or self._active == 0):
                self._cond.wait()
            self._started += 1
            self._cond.notify_all()
            now = self._now()
            if self._hold is not None or now - self._anchors[ticket] > self._max_age:
                later = self._hold if self._hold is not None else now
                return Resolution("release", claim.batch_id, len(claim.seqs), next_attempt_at=later)
            if not claim.payloads:  # its outbox rows are gone: nothing left to send
                return Resolution("ack", claim.batch_id, 0)
            self._active += 1
        resolution: Resolution | None = None
        try:
            try:
                result = self._sender.send(url, headers, batch_body(claim.payloads))
            except Exception as exc:  # a defect, not the endpoint's answer: still an attempt that failed
                log.exception("currents: send of batch %s raised", claim.batch_id)
                result = SendResult(None, error=f"{type(exc).__name__}: {exc}"[:500])
            resolution = self._resolve(claim, result, self._now())
            return resolution
        finally:
            with self._cond:
                self._active -= 1
                if resolution is not None and resolution.kind == "ack":
                    self._healthy = True
                elif resolution is not None and resolution.kind in WAITING:
                    self._healthy = False
                    if self._hold is None:
                        self._hold = resolution.next_attempt_at
