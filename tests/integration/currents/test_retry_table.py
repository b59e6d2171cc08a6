"""One test per row of the retry table (protocol §5.3) against a real receiver on loopback.

The worker runs on a simulated clock, so the 24 h and 48 h windows are jumped over, not waited.
"""

from __future__ import annotations

import msgspec
import pytest

from cohorthub.bootstrap import Container
from cohorthub.currents import services
from cohorthub.currents.model import ConnectorState
from cohorthub.store.currents import dead_letters
from tests.conftest import free_port
from tests.integration.currents.conftest import (
    T0,
    FakeClock,
    SinkServer,
    add_connector,
    drive,
    make_worker,
    record_events,
    send_round,
    settled,
    stats,
)

HOUR = 3600.0


def _dead(c: Container) -> list[tuple[str, int | None, str]]:
    with c.uow(readonly=True) as uow:
        rows = uow.conn.execute(dead_letters.select().order_by(dead_letters.c.id)).all()
    return [(r.event_id, r.status, r.error) for r in rows]


def test_2xx_is_done_and_never_resent(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url)
    record_events(container, workspace, 3)
    worker = make_worker(container, clock)
    drive(worker, clock, [connector.id], lambda: sink.sink.requests == 1)
    clock.advance_to(T0 + 48 * HOUR)
    for _ in range(5):
        worker.step(connector.id)
    assert (sink.sink.requests, sink.sink.received) == (1, 3)
    assert stats(container, connector.id, clock).delivered == 3


@pytest.mark.parametrize("status", [500, 503, 429, 418])
def test_5xx_429_and_other_statuses_back_off_then_deliver(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock, status: int
) -> None:
    sink.sink.fail_status, sink.sink.fail_times = status, 4
    connector = add_connector(container, workspace, sink.url)
    record_events(container, workspace, 2)
    worker = make_worker(container, clock)
    waits = []
    send_round(worker, connector.id, record=False)  # first attempt fails
    for _ in range(4):
        worker.step(connector.id)  # records the failure
        s = stats(container, connector.id, clock)
        assert s.state is ConnectorState.BACKING_OFF
        assert s.last_status == status
        assert s.next_attempt_at is not None
        waits.append(s.next_attempt_at - clock.now())
        clock.advance_to(s.next_attempt_at)
        worker.step(connector.id)
    drive(worker, clock, [connector.id], lambda: len(sink.sink.seen) == 2)
    # exponential with equal jitter: each wait lies in [d/2, d] for d = 5 s, 10 s, 20 s, 40 s
    for n, wait in enumerate(waits[:4]):
        assert 5 * 2**n / 2 <= wait <= 5 * 2**n
    s = stats(container, connector.id, clock)
    assert (s.delivered, s.retried, s.dropped, s.state) == (2, 8, 0, ConnectorState.ACTIVE)


def test_retry_after_is_honoured(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    sink.sink.fail_status, sink.sink.fail_times, sink.sink.retry_after = 429, 1, "120"
    connector = add_connector(container, workspace, sink.url)
    record_events(container, workspace, 1)
    worker = make_worker(container, clock)
    send_round(worker, connector.id)
    s = stats(container, connector.id, clock)
    assert s.next_attempt_at == clock.now() + 120


@pytest.mark.parametrize("status", [500, 429])
def test_5xx_and_429_are_dropped_after_24_hours_into_dead_letters(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock, status: int
) -> None:
    sink.sink.fail_status, sink.sink.fail_times = status, 10**9
    connector = add_connector(container, workspace, sink.url)
    ids = record_events(container, workspace, 3)
    worker = make_worker(container, clock)
    drive(worker, clock, [connector.id], lambda: stats(container, connector.id, clock).dropped == 3)
    assert T0 + 24 * HOUR <= clock.now() < T0 + 24 * HOUR + 60
    assert [d[:2] for d in _dead(container)] == [(i, status) for i in ids]
    assert sink.sink.requests > 100  # retried all along, capped at 10 min apart
    s = stats(container, connector.id, clock)
    assert (s.queued, s.in_flight, s.dead_letters, s.delivered) == (0, 0, 3, 0)


def test_network_errors_and_timeouts_count_as_5xx(
    container: Container, workspace: str, clock: FakeClock
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/braze"
    connector = add_connector(container, workspace, closed)
    record_events(container, workspace, 1)
    worker = make_worker(container, clock)
    send_round(worker, connector.id)
    s = stats(container, connector.id, clock)
    assert s.state is ConnectorState.BACKING_OFF
    assert s.last_status is None
    assert s.last_error is not None and "ConnectError" in s.last_error
    drive(worker, clock, [connector.id], lambda: stats(container, connector.id, clock).dropped == 1)
    assert clock.now() >= T0 + 24 * HOUR


def test_timeout_counts_as_5xx(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    sink.sink.delay = 1.0
    connector = add_connector(container, workspace, sink.url)
    record_events(container, workspace, 1)
    worker = make_worker(container, clock, timeout=0.2)
    send_round(worker, connector.id)
    s = stats(container, connector.id, clock)
    assert s.state is ConnectorState.BACKING_OFF
    assert s.last_error is not None and "Timeout" in s.last_error


def test_400_splits_into_single_events_and_drops_the_bad_one(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url, batch_size=100)
    ids = record_events(container, workspace, 100)
    sink.sink.reject_ids = {ids[41]}
    worker = make_worker(container, clock)
    drive(worker, clock, [connector.id], settled(container, connector.id, clock))
    assert sink.sink.requests == 1 + 100  # the batch, then 100 single-event batches
    assert sink.sink.seen == set(ids) - {ids[41]}
    assert [d[:2] for d in _dead(container)] == [(ids[41], 400)]
    s = stats(container, connector.id, clock)
    assert (s.delivered, s.dropped, s.dead_letters, s.retried) == (99, 1, 1, 100)
    assert s.state is ConnectorState.ACTIVE and s.last_status == 400  # no backoff for a 400


def test_413_splits_into_smaller_batches(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    sink.sink.max_events = 2
    connector = add_connector(container, workspace, sink.url, batch_size=5)
    ids = record_events(container, workspace, 5)
    worker = make_worker(container, clock)
    drive(worker, clock, [connector.id], settled(container, connector.id, clock))
    assert sink.sink.seen == set(ids)
    assert sink.sink.statuses == [413, 413, 200, 200, 200]  # 5 → 3+2; 3 → 2+1
    assert stats(container, connector.id, clock).dropped == 0


@pytest.mark.parametrize("status", [401, 403, 404])
def test_credential_errors_halt_probe_every_2_to_5_minutes_and_drop_after_48_hours(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock, status: int
) -> None:
    if status == 401:
        connector = add_connector(container, workspace, sink.url, token="wrong", batch_size=2)
    else:
        sink.sink.fail_status, sink.sink.fail_times = status, 10**9
        connector = add_connector(container, workspace, sink.url, batch_size=2)
    ids = record_events(container, workspace, 4)
    worker = make_worker(container, clock)
    gaps = []
    for _ in range(5):
        send_round(worker, connector.id)
        s = stats(container, connector.id, clock)
        assert s.state is ConnectorState.HALTED
        assert s.next_attempt_at is not None
        gaps.append(s.next_attempt_at - clock.now())
        clock.advance_to(s.next_attempt_at)
    assert all(120 <= g <= 300 for g in gaps)
    assert sink.sink.requests == 5  # one probe batch at a time, nothing new claimed while halted
    clock.advance_to(T0 + 47 * HOUR)
    drive(worker, clock, [connector.id], lambda: stats(container, connector.id, clock).dropped > 0)
    assert T0 + 48 * HOUR <= clock.now() <= T0 + 48 * HOUR + 300
    assert {d[1] for d in _dead(container)} == {status}
    assert {d[0] for d in _dead(container)} < set(ids)  # only the probe batch; the rest waits


def test_a_fixed_token_resumes_delivery(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url, token="wrong")
    record_events(container, workspace, 3)
    worker = make_worker(container, clock)
    send_round(worker, connector.id)
    assert stats(container, connector.id, clock).state is ConnectorState.HALTED
    sink.sink.token = "wrong"  # the receiver's new credentials now match
    drive(worker, clock, [connector.id], lambda: len(sink.sink.seen) == 3)
    assert stats(container, connector.id, clock).state is ConnectorState.ACTIVE
    assert clock.now() <= T0 + 300


def test_dead_letters_can_be_replayed_with_the_same_ids(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    sink.sink.fail_status, sink.sink.fail_times = 500, 10**9
    connector = add_connector(container, workspace, sink.url)
    ids = record_events(container, workspace, 3)
    worker = make_worker(container, clock)
    drive(worker, clock, [connector.id], lambda: stats(container, connector.id, clock).dropped == 3)
    sink.sink.fail_times = 0
    with container.uow() as uow:
        assert (
            services.replay_events(uow=uow, connector_id=connector.id, dead_letters=True, now=clock.now())
            == 3
        )
    drive(worker, clock, [connector.id], lambda: len(sink.sink.seen) == 3)
    assert [msgspec.json.decode(e)["id"] for e in sink.sink.events] == ids
    s = stats(container, connector.id, clock)
    assert (s.dead_letters, s.delivered) == (0, 3)


def test_replay_since_resends_delivered_events(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url)
    record_events(container, workspace, 2, now=T0 - 100)
    recent = record_events(container, workspace, 3, now=T0)
    worker = make_worker(container, clock)
    drive(worker, clock, [connector.id], lambda: len(sink.sink.seen) == 5)
    with container.uow() as uow:
        assert services.replay_events(uow=uow, connector_id=connector.id, since=T0 - 1, now=clock.now()) == 3
    drive(worker, clock, [connector.id], lambda: sink.sink.received == 8)
    assert [msgspec.json.decode(e)["id"] for e in sink.sink.events][2:] == recent
    assert len(sink.sink.seen) == 5  # the receiver deduped the replayed ids
