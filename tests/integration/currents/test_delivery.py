"""Delivery from the outbox to a real receiver on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import msgspec

from cohorthub.bootstrap import Container
from cohorthub.currents import services
from cohorthub.currents.model import ConnectorState, new_connector_id
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


def test_events_arrive_in_batches_with_the_documented_headers(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url, batch_size=10)
    ids = record_events(container, workspace, 25)
    worker = make_worker(container, clock, in_flight=1)  # one request at a time: in outbox order
    drive(worker, clock, [connector.id], lambda: len(sink.sink.seen) == 25)
    assert [msgspec.json.decode(e)["id"] for e in sink.sink.events] == ids
    assert sink.sink.requests == 3
    s = stats(container, connector.id, clock)
    assert (s.delivered, s.queued, s.in_flight, s.dropped, s.state) == (25, 0, 0, 0, ConnectorState.ACTIVE)
    assert s.oldest_undelivered_age is None


def test_events_before_the_connector_existed_are_not_exported(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    record_events(container, workspace, 3)
    connector = add_connector(container, workspace, sink.url)
    later = record_events(container, workspace, 2)
    drive(make_worker(container, clock), clock, [connector.id], settled(container, connector.id, clock))
    seen = {msgspec.json.decode(e)["id"] for e in sink.sink.events}
    if container.engine.dialect.name == "sqlite":
        assert seen == set(later)
    else:  # from the oldest transaction running at creation on: never fewer, maybe a few more
        assert seen >= set(later)


def test_event_selection_and_other_workspaces(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    from cohorthub.currents import envelope
    from tests.integration.currents.conftest import workspaces

    with container.uow() as uow:
        other, _ = workspaces.create_workspace(uow=uow, name="Other", now=T0)
    connector = add_connector(container, workspace, sink.url, events="users.behaviors.Purch*")
    user = envelope.event_user(braze_id="b1")
    wanted = envelope.purchase(
        workspace_id=workspace,
        user=user,
        product_id="p",
        currency="USD",
        price=1.0,
        time=T0,
        purchase_properties={},
    )
    with container.uow() as uow:
        uow.outbox.append(workspace, [wanted], now=T0)
        uow.commit()
    record_events(container, workspace, 5)
    record_events(container, other.id, 5)
    worker = make_worker(container, clock)
    drive(worker, clock, [connector.id], settled(container, connector.id, clock))
    assert [msgspec.json.decode(e)["id"] for e in sink.sink.events] == [wanted.id]


def test_stats_show_the_queue_while_paused(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url)
    with container.uow() as uow:
        services.set_paused(uow=uow, connector_id=connector.id, paused=True)
    record_events(container, workspace, 7, now=T0 - 30)
    worker = make_worker(container, clock)
    for _ in range(3):
        worker.step(connector.id)
    s = stats(container, connector.id, clock)
    assert (s.queued, s.delivered, s.state) == (7, 0, ConnectorState.PAUSED)
    assert s.oldest_undelivered_age == 30
    with container.uow() as uow:
        services.set_paused(uow=uow, connector_id=connector.id, paused=False)
    drive(worker, clock, [connector.id], lambda: len(sink.sink.seen) == 7)
    assert stats(container, connector.id, clock).delivered == 7


def test_the_delivery_loop_pipelines_rounds_and_records_every_outcome_when_stopped(
    container: Container, workspace: str, sink: SinkServer
) -> None:
    connector = add_connector(container, workspace, sink.url, batch_size=20)
    ids = record_events(container, workspace, 1_000)
    worker = make_worker(container, FakeClock(), in_flight=3, max_events_per_round=100)
    worker.now = container.now
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, lambda: [connector.id]))
    thread.start()
    deadline = time.monotonic() + 60
    while len(sink.sink.seen) < len(ids) and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert sink.sink.seen == set(ids)
    assert sink.sink.received == len(ids)  # no batch was sent twice
    assert sink.sink.requests == 50
    s = stats(container, connector.id, FakeClock(container.now()))
    assert (s.delivered, s.queued, s.in_flight) == (1_000, 0, 0)  # outcomes recorded on the way out


def test_a_connector_stored_with_an_unsendable_url_records_failed_attempts(
    container: Container, workspace: str, clock: FakeClock
) -> None:
    """A URL stored before URLs were checked this strictly: each send is an attempt that failed,
    shown as the connector's last error and retried on the policy's schedule, not a batch left
    leased until its lease runs out."""
    good = add_connector(container, workspace, "http://127.0.0.1:9/braze")
    stored = replace(good, id=new_connector_id(), url="http://\x0f\xaai/braze")
    with container.uow() as uow:
        uow.currents.add_connector(stored)
        uow.commit()
    record_events(container, workspace, 3)
    worker = make_worker(container, clock)
    send_round(worker, stored.id)
    first = stats(container, stored.id, clock)
    assert first.last_error is not None and "InvalidURL" in first.last_error
    assert (first.retried, first.in_flight, first.queued) == (3, 0, 3)
    assert first.next_attempt_at is not None and first.next_attempt_at > clock.now()
    clock.advance_to(first.next_attempt_at)
    send_round(worker, stored.id)
    second = stats(container, stored.id, clock)
    assert second.last_error_at is not None and first.last_error_at is not None
    assert second.next_attempt_at is not None and second.next_attempt_at > first.next_attempt_at


def test_a_quiet_connector_polls_less_and_less_often_until_it_has_something_to_send(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url)
    worker = make_worker(container, clock, poll_interval=0.5, quiet_poll_max=4.0)
    waits = [worker.step(connector.id, quiet_rounds=k).wake_at - clock.now() for k in range(6)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # 100 idle connectors: ~30 % of a core at 0.5 s each
    record_events(container, workspace, 3)
    busy = worker.step(connector.id, quiet_rounds=5)  # however quiet before, a round sends what is there
    assert (busy.sent_batches, busy.wake_at) == (1, clock.now())
    worker.flush(connector.id)
    assert len(sink.sink.seen) == 3
