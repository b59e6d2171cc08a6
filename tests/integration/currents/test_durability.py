"""Isolation between connectors, out-of-order commits, leases, restarts and several workers."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from sqlalchemy import text

from cohorthub.bootstrap import Container
from cohorthub.cli.sink import Sink
from cohorthub.currents import envelope
from cohorthub.currents.model import ConnectorState
from cohorthub.currents.worker import DeliveryWorker
from cohorthub.errors import ResourceLocked
from tests.integration.currents.conftest import (
    T0,
    FakeClock,
    SinkServer,
    add_connector,
    drive,
    make_worker,
    queue_many_events,
    record_events,
    send_round,
    settled,
    stats,
)

HOUR = 3600.0
#: Events queued before the restart (issue 4 asks for 1M; COHORTHUB_TEST_RESTART_EVENTS lowers it locally).
RESTART_EVENTS = int(os.environ.get("COHORTHUB_TEST_RESTART_EVENTS", "1000000"))


def test_a_failing_connector_never_delays_another(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    with SinkServer(Sink(token="s3cr3t", fail_status=500, fail_times=10**9)) as broken:
        bad = add_connector(container, workspace, broken.url, batch_size=10)
        good = add_connector(container, workspace, sink.url, batch_size=10)
        worker = make_worker(container, clock)
        for step in range(12):  # one simulated hour, events arriving every 5 minutes
            record_events(container, workspace, 50, now=clock.now())
            drive(worker, clock, [bad.id, good.id], settled(container, good.id, clock))
            assert len(sink.sink.seen) == 50 * (step + 1)
            clock.advance_to(T0 + (step + 1) * 300)
        assert clock.now() >= T0 + HOUR
        s = stats(container, bad.id, clock)
        assert s.delivered == 0 and s.state is ConnectorState.BACKING_OFF and s.dropped == 0
        assert s.queued + s.in_flight == 600
        assert s.oldest_undelivered_age is not None and s.oldest_undelivered_age >= HOUR - 300
        assert stats(container, good.id, clock).delivered == 600
        broken.sink.fail_times = 0  # the endpoint recovers: everything queued goes through
        drive(worker, clock, [bad.id, good.id], settled(container, bad.id, clock))
        assert len(broken.sink.seen) == 600


def test_pg_seq_committed_out_of_order_is_not_skipped(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers are serialized: seq always commits in order")
    connector = add_connector(container, workspace, sink.url)
    user = envelope.event_user(braze_id="b1")
    early = envelope.custom_event(
        workspace_id=workspace, user=user, name="early", time=T0, custom_properties={}
    )
    worker = make_worker(container, clock)
    with container.uow() as slow:  # takes the lower seq and stays open
        slow.outbox.append(workspace, [early], now=T0)
        later = record_events(container, workspace, 2)  # higher seqs, committed first
        with container.uow(readonly=True) as uow:
            seqs = uow.conn.execute(text("SELECT seq FROM outbox ORDER BY seq")).scalars().all()
        assert len(seqs) == 2  # the early row is invisible yet
        for _ in range(3):
            worker.step(connector.id)
        slow.commit()
    drive(worker, clock, [connector.id], lambda: len(sink.sink.seen) == 3)
    assert sink.sink.seen == {early.id, *later}


def test_an_expired_lease_is_delivered_by_another_worker(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url, batch_size=5)
    ids = record_events(container, workspace, 12)
    crashed = make_worker(container, clock, lease_seconds=60)
    crashed.sender_factory = _Blackhole
    send_round(crashed, connector.id, record=False)
    crashed._pending.clear()  # the process died before recording the outcome
    assert stats(container, connector.id, clock).in_flight == 12
    survivor = make_worker(container, clock, lease_seconds=60)
    for _ in range(3):
        survivor.step(connector.id)
    assert sink.sink.requests == 0  # leased to the crashed worker: not sent twice meanwhile
    clock.advance_to(T0 + 61)
    drive(survivor, clock, [connector.id], settled(container, connector.id, clock))
    assert sink.sink.seen == set(ids)
    assert stats(container, connector.id, clock).delivered == 12


def test_a_restart_with_many_queued_events_loses_nothing(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url, batch_size=1_000)
    ids = queue_many_events(container, workspace, RESTART_EVENTS)
    first = make_worker(container, clock)
    send_round(first, connector.id, record=False)
    first.step(connector.id)
    first._pending.clear()  # the process stops without recording its last round
    second = make_worker(container, clock)
    clock.advance_to(T0 + 601)  # the first worker's leases expire
    is_settled = settled(container, connector.id, clock)  # a count over the whole outbox: asked last
    drive(second, clock, [connector.id], lambda: len(sink.sink.seen) == len(ids) and is_settled())
    assert sink.sink.seen == set(ids)
    assert stats(container, connector.id, clock).queued == 0


def test_several_workers_share_a_connector_without_sending_twice(
    container: Container, workspace: str, sink: SinkServer
) -> None:
    connector = add_connector(container, workspace, sink.url, batch_size=50)
    ids = record_events(container, workspace, 3_000)
    stop = threading.Event()
    workers = [make_worker(container, FakeClock(), max_events_per_round=200) for _ in range(3)]
    for w in workers:
        w.now = container.now

    def loop(w: DeliveryWorker) -> None:
        while not stop.is_set() and len(sink.sink.seen) < len(ids):
            if not w.step(connector.id).sent_batches:
                stop.wait(0.01)
        w.flush(connector.id)

    threads = [threading.Thread(target=loop, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    stop.set()
    assert sink.sink.seen == set(ids)
    assert sink.sink.received == len(ids)  # no batch was sent twice


class _Blackhole:
    def send(self, url: str, headers: dict[str, str], body: bytes) -> object:
        from cohorthub.currents.ports import SendResult

        return SendResult(200)

    def close(self) -> None:
        pass


def test_outcomes_of_a_round_whose_transaction_failed_are_recorded_by_the_next_round(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url, batch_size=5)
    record_events(container, workspace, 12)
    worker = make_worker(container, clock)
    send_round(worker, connector.id, record=False)  # three batches sent, outcomes held in memory
    working = worker.uow

    def busy() -> Any:
        raise ResourceLocked()

    worker.uow = busy
    with pytest.raises(ResourceLocked):
        worker.step(connector.id)  # the database is busy: nothing recorded
    worker.uow = working
    worker.step(connector.id)
    s = stats(container, connector.id, clock)
    assert (s.delivered, s.in_flight, s.queued) == (12, 0, 0)  # recorded, not left to expire
    assert sink.sink.requests == 3
