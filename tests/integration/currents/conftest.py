"""Currents fixtures: a fake clock, a real receiver on loopback, events in the outbox, a driver."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from sqlalchemy import text

from cohorthub.bootstrap import Container
from cohorthub.cli.sink import Sink
from cohorthub.currents import envelope, services
from cohorthub.currents.model import Connector
from cohorthub.currents.policy import RetryPolicy
from cohorthub.currents.transport import HttpSender
from cohorthub.currents.worker import DeliveryWorker, WorkerOptions
from cohorthub.store.currents.schema import PG_XMIN
from cohorthub.workspaces import services as workspaces
from tests.conftest import free_port

T0 = 1_800_000_000.0


@dataclass
class FakeClock:
    """Simulated time: the worker reads it, the test moves it."""

    t: float = T0

    def now(self) -> float:
        """The simulated current time."""
        return self.t

    def advance_to(self, when: float) -> None:
        """Move forward (never back)."""
        self.t = max(self.t, when)


class SinkServer:
    """A `Sink` served by uvicorn in a thread."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/braze"
        config = uvicorn.Config(sink.app(), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> SinkServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "sink did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def clock() -> FakeClock:
    """A simulated clock starting at T0."""
    return FakeClock()


@pytest.fixture
def sink() -> Iterator[SinkServer]:
    """A receiver expecting the bearer token `s3cr3t`."""
    with SinkServer(Sink(token="s3cr3t")) as server:
        yield server


@pytest.fixture
def workspace(container: Container) -> str:
    """A fresh workspace id."""
    with container.uow() as uow:
        ws, _ = workspaces.create_workspace(uow=uow, name="Acme", now=T0)
    return ws.id


def add_connector(c: Container, workspace: str, url: str, **kw: object) -> Connector:
    """Create a connector with the sink's token unless told otherwise."""
    kw.setdefault("token", "s3cr3t")
    with c.uow() as uow:
        return services.create_connector(
            uow=uow,
            workspace_id=workspace,
            kind="http",
            url=url,
            now=T0,
            **kw,  # type: ignore[arg-type]
        )


def record_events(
    c: Container, workspace: str, n: int, *, name: str = "played", now: float = T0
) -> list[str]:
    """Append `n` custom events to the outbox in one transaction; return their ids."""
    user = envelope.event_user(braze_id="639a35d192b0df004d06514c", external_id="u1")
    events = [
        envelope.custom_event(
            workspace_id=workspace, user=user, name=name, time=now, custom_properties={"i": i}
        )
        for i in range(n)
    ]
    with c.uow() as uow:
        uow.outbox.append(workspace, events, now=now)
        uow.commit()
    wait_until_claimable(c)
    return [e.id for e in events]


def queue_many_events(c: Container, workspace: str, n: int, *, now: float = T0) -> list[str]:
    """Append `n` custom events to the outbox in one transaction, rows made by the database; their ids.

    For the tests that queue a million events (building them in Python took most of such a test):
    each payload holds the fields `record_events` stores (a `users.behaviors.CustomEvent` of u1 with
    its number as its one property), as the database writes JSON; ids are this call's random
    UUID-shaped prefix and the number, 36 characters.
    """
    bits = random.getrandbits
    prefix = f"{bits(32):08x}-{bits(16):04x}-7{bits(12):03x}-8{bits(12):03x}"
    if c.engine.dialect.name == "postgresql":
        numbers = "generate_series(0, CAST(:n AS integer) - 1) AS s(i)"
        event_id = "(CAST(:prefix AS text) || '-' || lpad(i::text, 12, '0'))"
        obj, as_bytes = "json_build_object", "convert_to({}::text, 'UTF8')"
        ws, at = "CAST(:ws AS text)", "CAST(:time AS bigint)"
    else:
        numbers = (
            "(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < :n) "
            "SELECT i FROM s)"
        )
        event_id, obj, as_bytes = "printf('%s-%012d', :prefix, i)", "json_object", "CAST({} AS BLOB)"
        ws, at = ":ws", ":time"
    payload = (
        f"{obj}('event_type', 'users.behaviors.CustomEvent', 'id', {event_id}, 'time', {at}, "
        f"'user', {obj}('user_id', '639a35d192b0df004d06514c', 'external_user_id', 'u1'), "
        f"'properties', {obj}('name', 'played', 'custom_properties', {obj}('i', i), 'app_group_id', {ws}))"
    )
    sql = (
        "INSERT INTO outbox (workspace_id, event_id, event_type, time, payload, created_at) "
        f"SELECT {ws}, {event_id}, 'users.behaviors.CustomEvent', {at}, {as_bytes.format(payload)}, :now "
        f"FROM {numbers}"
    )
    with c.uow() as uow:
        uow.conn.execute(text(sql), {"prefix": prefix, "n": n, "ws": workspace, "time": int(now), "now": now})
        uow.commit()
    wait_until_claimable(c)
    return [f"{prefix}-{i:012d}" for i in range(n)]


def wait_until_claimable(c: Container, timeout: float = 30) -> None:
    """On PostgreSQL, wait until no transaction older than the events is open anywhere on the server.

    Workers claim only events below the oldest running transaction (so none that commits late is
    skipped); an open transaction of another client of the same server, another test process say,
    holds new events back until it ends.
    """
    if c.engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + timeout
    while True:
        with c.engine.connect() as conn:
            held = conn.exec_driver_sql(f"SELECT count(*) FROM outbox WHERE xid >= {PG_XMIN}").scalar_one()
        if not held or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def make_worker(c: Container, clock: FakeClock, *, timeout: float = 5.0, **options: object) -> DeliveryWorker:
    """A worker on the fake clock with seeded jitter."""
    return DeliveryWorker(
        uow=c.uow,
        sender_factory=lambda: HttpSender(timeout=timeout),
        policy=RetryPolicy(rng=random.Random(7)),
        now=clock.now,
        options=WorkerOptions(**options),  # type: ignore[arg-type]
    )


def drive(
    worker: DeliveryWorker,
    clock: FakeClock,
    connector_ids: list[str],
    until: Callable[[], bool],
    *,
    max_rounds: int = 20_000,
) -> int:
    """Run rounds for every connector; when none sends, jump the clock to the earliest wake.

    Idle rounds also wait 2 ms of real time: on PostgreSQL a transaction of another session
    (another test run on the same server) can hold back the snapshot horizon for a moment.
    """
    for rounds in range(max_rounds):
        if until():
            for cid in connector_ids:
                worker.flush(cid)
            return rounds
        reports = [worker.step(cid) for cid in connector_ids]
        if not any(r.sent_batches for r in reports):
            clock.advance_to(min(r.wake_at for r in reports))
            time.sleep(0.002)
    for cid in connector_ids:
        worker.flush(cid)
    raise AssertionError("condition not reached")


def stats(c: Container, connector_id: str, clock: FakeClock) -> services.ConnectorStats:
    """The connector's statistics now."""
    with c.uow(readonly=True) as uow:
        return services.connector_stats(uow=uow, connector_id=connector_id, now=clock.now())


def settled(c: Container, connector_id: str, clock: FakeClock) -> Callable[[], bool]:
    """A condition: nothing queued and nothing in flight."""

    def check() -> bool:
        s = stats(c, connector_id, clock)
        return s.queued == 0 and s.in_flight == 0

    return check


def send_round(worker: DeliveryWorker, connector_id: str, *, record: bool = True) -> None:
    """Step until a round sends something (on PostgreSQL another session's open transaction can
    hold the snapshot horizon back for a moment), then step once more to record the outcome."""
    deadline = time.monotonic() + 20
    while not worker.step(connector_id).sent_batches:
        assert time.monotonic() < deadline, "nothing to send"
        time.sleep(0.005)
    if record:
        worker.step(connector_id)
