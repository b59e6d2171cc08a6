"""Short leases renewed by live workers: a dead worker's batches are due once its leases run out,
a live worker's never are, and two live workers never send the same batch at once."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from cohorthub.bootstrap import Container
from cohorthub.cli.sink import Sink
from cohorthub.currents.ports import Claim
from tests.integration.currents.conftest import (
    T0,
    FakeClock,
    SinkServer,
    add_connector,
    make_worker,
    record_events,
)


def _claim(c: Container, connector_id: str, owner: str, *, now: float, n: int) -> list[Claim]:
    """Claim `n` events (on PostgreSQL, waiting while another session's transaction holds back
    the snapshot horizon)."""
    deadline = time.monotonic() + 20
    while True:
        with c.uow() as uow:
            cursor = uow.currents.connector_cursor(connector_id)
            assert cursor is not None
            claims = uow.currents.claim_new(
                cursor.connector, max_events=n, owner=owner, lease_until=now + 20, now=now
            )
            uow.commit()
        if claims or time.monotonic() > deadline:
            return claims
        time.sleep(0.01)


def _renew(c: Container, owner: str, *, now: float) -> int:
    with c.uow() as uow:
        renewed = uow.currents.renew_leases(owner, now=now, lease_until=now + 20)
        uow.commit()
    return renewed


def _lease_due(c: Container, connector_id: str, owner: str, *, now: float) -> list[int]:
    with c.uow() as uow:
        due = uow.currents.lease_due(connector_id, now=now, limit=100, owner=owner, lease_until=now + 20)
        uow.commit()
    return sorted(claim.batch_id for claim in due)


def test_a_renewed_lease_is_not_due_and_a_lapsed_one_is_not_renewed(
    container: Container, workspace: str
) -> None:
    connector = add_connector(container, workspace, "http://127.0.0.1:9/", batch_size=5)
    record_events(container, workspace, 20)
    alive = _claim(container, connector.id, "alive", now=T0, n=10)  # leased until T0 + 20
    dead = _claim(container, connector.id, "dead", now=T0, n=10)
    assert _renew(container, "alive", now=T0 + 10) == 2  # now until T0 + 30
    assert _lease_due(container, connector.id, "other", now=T0 + 25) == sorted(c.batch_id for c in dead)
    assert _renew(container, "dead", now=T0 + 26) == 0  # taken over: the dead worker's lease is gone
    assert _renew(container, "alive", now=T0 + 31) == 0  # lapsed: it may be taken, so not renewed
    assert _lease_due(container, connector.id, "other", now=T0 + 31) == sorted(c.batch_id for c in alive)


@dataclass
class OverlapSink(Sink):
    """A receiver that counts events arriving while another request with the same event is open."""

    open_ids: Counter[str] = field(default_factory=Counter)
    overlaps: int = 0

    async def _receive(self, request: Request) -> Response:
        ids = [event["id"] for event in json.loads(await request.body())["events"]]
        self.overlaps += sum(1 for i in ids if self.open_ids[i])
        self.open_ids.update(ids)
        try:
            return await super()._receive(request)
        finally:
            self.open_ids.subtract(ids)


def test_two_live_workers_never_send_the_same_batch_at_once(container: Container, workspace: str) -> None:
    with SinkServer(OverlapSink(token="s3cr3t", delay=0.1)) as server:
        sink = server.sink
        assert isinstance(sink, OverlapSink)
        connector = add_connector(container, workspace, server.url, batch_size=5)
        ids = record_events(container, workspace, 1_000)
        # The first worker leases every batch in its first round and sends them 4 at a time for
        # longer than a lease: it keeps them by renewing; the second one starts meanwhile.
        workers = [
            make_worker(container, FakeClock(), timeout=1.0, lease_seconds=4.0, refresh_interval=0.2)
            for _ in range(2)
        ]
        stop = threading.Event()
        threads = []
        for worker in workers:
            worker.now = container.now
            thread = threading.Thread(target=worker.run, args=(stop, lambda: [connector.id]))
            thread.start()
            threads.append(thread)
            time.sleep(0.5)
        deadline = time.monotonic() + 60
        while len(sink.seen) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert sink.seen == set(ids)
    assert sink.overlaps == 0
    assert sink.received == len(ids)  # no worker died: each batch was sent once
