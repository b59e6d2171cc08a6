"""Outbox retention on SQLite and PostgreSQL: only old events no connector still needs go."""

from __future__ import annotations

import msgspec
import pytest
from sqlalchemy import select

from cohorthub.bootstrap import Container
from cohorthub.currents import services
from cohorthub.currents.errors import InvalidConnector
from cohorthub.currents.retention import PruneReport, prune_outbox
from cohorthub.store.tables import outbox
from cohorthub.workspaces import services as workspaces
from tests.integration.currents.conftest import (
    T0,
    FakeClock,
    SinkServer,
    add_connector,
    drive,
    make_worker,
    record_events,
    settled,
)

DAY = 86400.0
LATER = T0 + 8 * DAY  # when the events recorded at T0 are past a 7-day retention


def stored(c: Container, workspace: str) -> set[str]:
    """The event ids still in the workspace's outbox."""
    with c.uow(readonly=True) as uow:
        query = select(outbox.c.event_id).where(outbox.c.workspace_id == workspace)
        return set(uow.conn.execute(query).scalars())


def prune(c: Container, *, now: float = LATER, dry_run: bool = False, chunk: int = 7) -> PruneReport:
    """Prune with a 7-day retention and small chunks (so the walk crosses chunk boundaries)."""
    return prune_outbox(uow=c.uow, older_than=7 * DAY, dry_run=dry_run, chunk=chunk, now=now)


def test_prune_removes_only_old_delivered_events(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url, batch_size=10)
    old = record_events(container, workspace, 25)
    recent = record_events(container, workspace, 5, now=T0 + 2 * DAY)
    drive(make_worker(container, clock), clock, [connector.id], settled(container, connector.id, clock))
    undelivered = record_events(container, workspace, 4)  # old, but the connector has not claimed it

    report = prune(container)
    assert report.removed == 25
    assert stored(container, workspace) == set(recent) | set(undelivered)
    assert set(old).isdisjoint(stored(container, workspace))
    assert prune(container).removed == 0  # nothing left to do


def test_a_slow_connectors_queued_or_leased_old_events_survive(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    fast = add_connector(container, workspace, sink.url, batch_size=10)
    slow = add_connector(container, workspace, sink.url, batch_size=10)
    ids = record_events(container, workspace, 30)
    worker = make_worker(container, clock)
    drive(worker, clock, [fast.id], settled(container, fast.id, clock))
    with container.uow() as uow:  # the slow connector leases its events and has not sent them yet
        claims = uow.currents.claim_new(slow, max_events=30, owner="w", lease_until=T0 + 600, now=T0)
        uow.commit()
    assert sum(len(claim.seqs) for claim in claims) == 30

    assert prune(container).removed == 0
    assert stored(container, workspace) == set(ids)

    sink.sink.seen.clear()
    drive(worker, clock, [slow.id], settled(container, slow.id, clock))  # after the lease expired
    assert sink.sink.seen == set(ids)
    assert prune(container).removed == 30
    assert stored(container, workspace) == set()


def test_events_past_a_paused_connectors_cursor_survive(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url)
    with container.uow() as uow:
        services.set_paused(uow=uow, connector_id=connector.id, paused=True)
    ids = record_events(container, workspace, 12)
    assert prune(container).removed == 0
    assert stored(container, workspace) == set(ids)


def test_a_workspace_without_connectors_prunes_by_age_only(container: Container, workspace: str) -> None:
    old = record_events(container, workspace, 20)
    young = record_events(container, workspace, 3, now=LATER - 6 * DAY)
    with container.uow() as uow:
        other, _ = workspaces.create_workspace(uow=uow, name="Other", now=T0)
    theirs = record_events(container, other.id, 9)

    report = prune(container)
    assert (report.removed, report.workspaces) == (29, 2)
    assert stored(container, workspace) == set(young)
    assert stored(container, other.id) == set()
    assert old and theirs


def test_dry_run_counts_and_changes_nothing(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url, batch_size=10)
    ids = record_events(container, workspace, 17)
    drive(make_worker(container, clock), clock, [connector.id], settled(container, connector.id, clock))
    record_events(container, workspace, 2)  # not claimed

    report = prune(container, dry_run=True)
    assert (report.removed, report.dry_run) == (17, True)
    assert stored(container, workspace) >= set(ids)
    assert prune(container).removed == 17


def test_a_dead_letter_keeps_its_event_and_replays_after_a_prune(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url, batch_size=10)
    ids = record_events(container, workspace, 10)
    sink.sink.reject_ids = {ids[3]}
    worker = make_worker(container, clock)
    drive(worker, clock, [connector.id], settled(container, connector.id, clock))
    assert sink.sink.seen == set(ids) - {ids[3]}

    assert prune(container).removed == 9
    assert stored(container, workspace) == {ids[3]}

    sink.sink.reject_ids = set()
    with container.uow() as uow:
        queued = services.replay_events(
            uow=uow, connector_id=connector.id, dead_letters=True, now=clock.now()
        )
    assert queued == 1
    drive(worker, clock, [connector.id], lambda: ids[3] in sink.sink.seen)
    assert msgspec.json.decode(sink.sink.events[-1])["id"] == ids[3]
    assert prune(container).removed == 1  # delivered now: it may go


def test_a_retention_that_is_not_positive_is_refused(container: Container) -> None:
    with pytest.raises(InvalidConnector, match="must be positive"):
        prune_outbox(uow=container.uow, older_than=0, now=LATER)


def test_the_worker_prunes_at_most_once_per_interval(container: Container, workspace: str) -> None:
    clock = FakeClock(LATER)
    worker = make_worker(container, clock, retention_seconds=7 * DAY, prune_interval=3600.0)
    record_events(container, workspace, 5)
    due = worker.prune_if_due(LATER)
    assert due == LATER + 3600.0 and stored(container, workspace) == set()
    record_events(container, workspace, 3)
    clock.advance_to(LATER + 3599)
    assert worker.prune_if_due(due) == due  # not yet
    assert len(stored(container, workspace)) == 3
    clock.advance_to(LATER + 3600)
    assert worker.prune_if_due(due) == LATER + 7200.0
    assert stored(container, workspace) == set()


def test_a_worker_without_retention_never_prunes(container: Container, workspace: str) -> None:
    worker = make_worker(container, FakeClock(LATER))
    ids = record_events(container, workspace, 2)
    assert worker.prune_if_due(0.0) == 0.0
    assert stored(container, workspace) == set(ids)


def test_events_after_pruning_the_whole_outbox_are_delivered(
    container: Container, workspace: str, sink: SinkServer, clock: FakeClock
) -> None:
    connector = add_connector(container, workspace, sink.url, batch_size=10)
    worker = make_worker(container, clock)
    first = record_events(container, workspace, 12)
    drive(worker, clock, [connector.id], settled(container, connector.id, clock))
    assert prune(container).removed == 12
    assert stored(container, workspace) == set()  # a quiet week: the outbox is empty

    sink.sink.seen.clear()
    later = record_events(container, workspace, 3, now=LATER)  # new events get seqs past the cursor
    clock.advance_to(LATER)
    drive(worker, clock, [connector.id], lambda: sink.sink.seen >= set(later))
    assert sink.sink.seen == set(later)
    assert set(first).isdisjoint(sink.sink.seen)
