"""Several workers on one connector: claims serialize on the connector row, nothing else waits."""

from __future__ import annotations

import threading

import pytest

from cohorthub.bootstrap import Container
from cohorthub.currents.ports import Claim
from tests.integration.currents.conftest import T0, add_connector, record_events


def _claim(c: Container, connector_id: str, n: int, *, commit: bool = True) -> list[Claim]:
    with c.uow() as uow:
        cursor = uow.currents.connector_cursor(connector_id)
        assert cursor is not None
        claims = uow.currents.claim_new(
            cursor.connector, max_events=n, owner="w", lease_until=T0 + 600, now=T0
        )
        if commit:
            uow.commit()
    return claims


def test_a_claim_waits_for_the_other_workers_claim_and_starts_after_it(
    container: Container, workspace: str
) -> None:
    connector = add_connector(container, workspace, "http://127.0.0.1:9/", batch_size=5)
    record_events(container, workspace, 30)
    second: list[Claim] = []
    with container.uow() as first_uow:
        cursor = first_uow.currents.connector_cursor(connector.id)
        assert cursor is not None
        first = first_uow.currents.claim_new(
            cursor.connector, max_events=10, owner="a", lease_until=T0 + 600, now=T0
        )
        thread = threading.Thread(target=lambda: second.extend(_claim(container, connector.id, 10)))
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive()  # waiting for the first claim's transaction
        first_uow.commit()
    thread.join(timeout=10)
    seqs = [s for claim in first + second for s in claim.seqs]
    assert len(seqs) == 20 and len(set(seqs)) == 20  # disjoint: the second read the moved cursor
    assert max(s for c in first for s in c.seqs) < min(s for c in second for s in c.seqs)


def test_leasing_due_batches_does_not_wait_for_a_claim_in_progress(
    container: Container, workspace: str
) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    connector = add_connector(container, workspace, "http://127.0.0.1:9/", batch_size=5)
    record_events(container, workspace, 20)
    _claim(container, connector.id, 10)  # two batches, leased until T0 + 600
    with container.uow() as claiming:
        cursor = claiming.currents.connector_cursor(connector.id)
        assert cursor is not None
        claiming.currents.claim_new(cursor.connector, max_events=10, owner="a", lease_until=T0, now=T0)
        with container.uow() as other:  # the connector row is locked by `claiming`
            due = other.currents.lease_due(connector.id, now=T0 + 601, limit=10, owner="b", lease_until=T0)
            other.commit()
        claiming.commit()
    assert len(due) == 2 and all(len(c.seqs) == 5 for c in due)
