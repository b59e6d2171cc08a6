"""`kill -9` of `cohorthub serve` mid-delivery: a restarted server sends the dead one's leased batches
within a minute (short renewed leases), on a real clock, to a real receiver; nothing is lost."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from cohorthub.bootstrap import Container
from cohorthub.cli.sink import Sink
from cohorthub.currents import services
from cohorthub.workspaces import services as workspaces
from tests.conftest import free_port, stop_process
from tests.e2e.currents.test_cli_crash import CLI, _wait
from tests.integration.currents.conftest import SinkServer, add_connector, record_events

NOW = 1_800_000_000.0
EVENTS = 600
RECOVERY = 60.0  # seconds after the restart by which every event must have arrived


@contextmanager
def _processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in procs:
            stop_process(proc)


def _serve(procs: list[subprocess.Popen[bytes]], db: str) -> subprocess.Popen[bytes]:
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--database", db, "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(proc)
    _wait(lambda: _healthy(port) or proc.poll() is not None)
    assert proc.poll() is None, "serve exited"
    return proc


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_restarted_server_sends_a_killed_servers_batches_within_a_minute(
    container: Container, database_url: str
) -> None:
    with container.uow() as uow:
        ws, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    with SinkServer(Sink(token="s3cr3t", delay=0.2)) as sink, _processes() as procs:
        connector = add_connector(container, ws.id, sink.url, batch_size=10)
        recorded = record_events(container, ws.id, EVENTS)
        first = _serve(procs, database_url)
        _wait(lambda: len(sink.sink.seen) >= 100)
        first.send_signal(signal.SIGKILL)  # its round leased every batch; most are not sent yet
        first.wait()
        killed_at = time.monotonic()
        assert len(sink.sink.seen) < EVENTS
        _serve(procs, database_url)
        _wait(lambda: len(sink.sink.seen) == EVENTS, timeout=RECOVERY)
        print(f"all {EVENTS} events received {time.monotonic() - killed_at:.1f} s after kill -9")
        assert sink.sink.seen == set(recorded)

        def settled() -> bool:
            with container.uow(readonly=True) as uow:
                stats = services.connector_stats(uow=uow, connector_id=connector.id, now=container.now())
            return (stats.queued, stats.in_flight, stats.dropped) == (0, 0, 0)

        _wait(settled)
