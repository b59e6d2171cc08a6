"""The in-flight window of one connector: slow start, bounded concurrency, hold after a failure."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

import pytest

from cohorthub.currents.flight import Flight
from cohorthub.currents.outcome import resolve_attempt
from cohorthub.currents.policy import RetryPolicy
from cohorthub.currents.ports import Claim, SendResult

NOW = 1_800_000_000.0
URL = "http://127.0.0.1:9/braze"


@dataclass
class GatedSender:
    """Answers from a list of statuses; tracks how many requests overlap; can hold requests."""

    statuses: list[int]
    gate: threading.Barrier | None = None  # once set, every request waits for `parties` peers
    lock: threading.Lock = field(default_factory=threading.Lock)
    active: int = 0
    peak: int = 0
    peaks: list[int] = field(default_factory=list)  # the overlap seen by each request, in order
    bodies: list[bytes] = field(default_factory=list)

    def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.peaks.append(self.active)
            self.bodies.append(body)
            status = self.statuses.pop(0) if self.statuses else 200
            gate = self.gate
        try:
            if gate is not None and status == 200 and len(self.bodies) > 1:
                gate.wait(timeout=10)  # raises BrokenBarrierError if the peers never come
            return SendResult(status)
        finally:
            with self.lock:
                self.active -= 1

    def close(self) -> None:
        pass


def claims(n: int, *, size: int = 2) -> list[Claim]:
    """n batches of `size` events."""
    return [
        Claim(i, tuple(range(i * size, (i + 1) * size)), (b'{"id":"%d"}' % i,) * size, 0, None)
        for i in range(n)
    ]


@pytest.fixture
def make() -> Iterator[partial[Flight]]:
    flights: list[Flight] = []

    def build(sender: GatedSender, *, width: int = 4, max_age: float = 300.0) -> Flight:
        flight = Flight(
            sender,
            width=width,
            resolve=partial(resolve_attempt, RetryPolicy()),
            now=lambda: NOW,
            max_age=max_age,
        )
        flights.append(flight)
        return flight

    yield partial(build)
    for flight in flights:
        flight.close()


def test_one_request_at_a_time_until_a_2xx_then_up_to_width(make: partial[Flight]) -> None:
    sender = GatedSender(statuses=[], gate=threading.Barrier(4))
    flight = make(sender, width=4)
    flight.submit(URL, {}, claims(5), NOW)
    outcomes = flight.collect()
    assert [o.kind for o in outcomes] == ["ack"] * 5
    assert sender.peaks[0] == 1  # the first request went alone
    assert sender.peak == 4  # the next four overlapped (the barrier needs all four at once)
    assert flight.unfinished == 0


def test_a_failure_holds_every_batch_not_yet_sent(make: partial[Flight]) -> None:
    sender = GatedSender(statuses=[503])
    flight = make(sender, width=4)
    flight.submit(URL, {}, claims(6), NOW)
    outcomes = sorted(flight.collect(), key=lambda o: o.batch_id)
    assert len(sender.bodies) == 1  # nothing after the failing request was sent
    assert outcomes[0].kind == "retry" and outcomes[0].next_attempt_at is not None
    assert [o.kind for o in outcomes[1:]] == ["release"] * 5
    assert {o.next_attempt_at for o in outcomes[1:]} == {outcomes[0].next_attempt_at}
    assert not flight.holding  # handed over: the next round reads the state from the database


def test_after_a_failure_requests_go_one_at_a_time_again(make: partial[Flight]) -> None:
    sender = GatedSender(statuses=[200, 500])
    flight = make(sender, width=4)
    flight.submit(URL, {}, claims(1), NOW)
    flight.submit(URL, {}, claims(1), NOW)
    assert [o.kind for o in flight.collect()] == ["ack", "retry"]
    flight.submit(URL, {}, claims(3), NOW)
    assert [o.kind for o in flight.collect()] == ["ack"] * 3
    assert sender.peaks[2] == 1  # the probe after the failure went alone


def test_a_batch_leased_too_long_ago_is_released_not_sent(make: partial[Flight]) -> None:
    sender = GatedSender(statuses=[])
    flight = make(sender, max_age=300.0)
    flight.submit(URL, {}, claims(2), NOW - 301)
    outcomes = flight.collect()
    assert [(o.kind, o.next_attempt_at) for o in outcomes] == [("release", NOW)] * 2
    assert sender.bodies == []


def test_collect_can_leave_sends_on_the_wire(make: partial[Flight]) -> None:
    sender = GatedSender(statuses=[])
    flight = make(sender, width=2)
    flight.submit(URL, {}, claims(4), NOW)
    first = flight.collect(keep=2)
    assert flight.unfinished <= 2
    rest = flight.collect()
    assert sorted(o.batch_id for o in first + rest) == [0, 1, 2, 3]
    assert b'{"events":[{"id":"0"},{"id":"0"}]}' in sender.bodies  # spliced from the stored bytes


@dataclass
class HeldSender:
    """Answers 200; holds the request numbered `hold` until `release` is set."""

    hold: int
    release: threading.Event = field(default_factory=threading.Event)
    bodies: list[bytes] = field(default_factory=list)

    def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        self.bodies.append(body)
        if len(self.bodies) == self.hold:
            self.release.wait(timeout=10)
        return SendResult(200)

    def close(self) -> None:
        pass


def test_a_renewed_lease_keeps_its_waiting_batch_sendable_and_only_those_renewed() -> None:
    sender = HeldSender(hold=1)
    clock = [NOW]
    flight = Flight(
        sender, width=1, resolve=partial(resolve_attempt, RetryPolicy()), now=lambda: clock[0], max_age=300.0
    )
    batches = claims(5)
    flight.submit(URL, {}, batches[:3], NOW)  # 0 is held on the wire; 1 and 2 wait their turn
    flight.submit(URL, {}, batches[3:4], NOW - 301)  # already too old when the renewal comes
    flight.renewed(NOW + 200, flight.mark())
    flight.submit(URL, {}, batches[4:], NOW)  # leased after the renewal began: not covered
    clock[0] = NOW + 400  # past every lease but the renewed ones
    sender.release.set()
    kinds = {o.batch_id: o.kind for o in flight.collect()}
    flight.close()
    assert kinds == {0: "ack", 1: "ack", 2: "ack", 3: "release", 4: "release"}
    assert len(sender.bodies) == 3


class RaisingSender:
    """Raises from `send`, as a client does for a URL it cannot make a request to."""

    def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        raise ValueError("URL can't contain control characters")

    def close(self) -> None:
        pass


def test_a_send_that_raises_is_a_failed_attempt_with_its_error_not_a_batch_left_leased(
    make: partial[Flight],
) -> None:
    flight = make(RaisingSender(), width=4)
    flight.submit(URL, {}, claims(3), NOW)
    outcomes = sorted(flight.collect(), key=lambda o: o.batch_id)
    first = outcomes[0]
    assert (first.kind, first.attempts, first.status) == ("retry", 1, None)
    assert first.error is not None and "ValueError: URL can't contain control characters" in first.error
    assert first.next_attempt_at is not None and first.next_attempt_at > NOW  # backs off like a network error
    assert [o.kind for o in outcomes[1:]] == ["release"] * 2  # held behind the failure, as after any
