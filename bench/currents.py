"""Currents delivery throughput: outbox → leased batches → HTTP → local sink, vs a bare POST loop.

    .venv/bin/python bench/currents.py                 # 1M events, SQLite, batches of 100 and 1,000
    .venv/bin/python bench/currents.py --events 20000  # smoke run
    .venv/bin/python bench/currents.py --pg postgresql://postgres@127.0.0.1:5432/postgres

Delivery is measured end to end with durable claims and acks (SQLite synchronous=FULL), by the
worker's own delivery loop; queuing the events is timed separately. The baseline splices and
POSTs the same batches with the worker's HTTP sender, as many at once as the worker (4), to the
same kind of sink without any database, in the same run; the ratio is delivery / baseline.
PostgreSQL runs `cohorthub currents worker` processes, timed from the first delivered event.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from cohorthub.bootstrap import Container, bootstrap
from cohorthub.config import Settings
from cohorthub.currents import envelope, services
from cohorthub.currents.transport import HttpSender
from cohorthub.currents.wire import batch_body, request_headers
from cohorthub.currents.worker import DeliveryWorker, WorkerOptions
from cohorthub.store.db import normalize_url
from cohorthub.store.tables import outbox
from cohorthub.workspaces import services as workspaces

CLI = [sys.executable, "-m", "cohorthub.cli.main"]


class SinkProcess:
    """`cohorthub currents-sink` on a free port, writing to a temp file."""

    def __init__(self, tmp: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/braze"
        out = tmp / f"sink-{uuid.uuid4().hex[:6]}.jsonl"
        args = ["currents-sink", "--port", str(self.port), "--token", "t0k3n", "--out", str(out)]
        self.proc = subprocess.Popen([*CLI, *args], stderr=subprocess.DEVNULL)
        self._client = httpx.Client(timeout=5)  # polled while the worker runs: keep it cheap
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("sink did not start")

    def unique(self) -> int:
        """Distinct events received."""
        return int(self._client.get(f"http://127.0.0.1:{self.port}/stats").json()["unique"])

    def stop(self) -> None:
        """Terminate the process."""
        self._client.close()
        self.proc.terminate()
        self.proc.wait()


def queue_events(c: Container, workspace_id: str, n: int) -> float:
    """Append n custom events in transactions of 10,000; return seconds."""
    user = envelope.event_user(braze_id="639a35d192b0df004d06514c", external_id="user-1", timezone="UTC")
    started = time.perf_counter()
    for start in range(0, n, 10_000):
        events = [
            envelope.custom_event(
                workspace_id=workspace_id, user=user, name="played", time=1.8e9, custom_properties={"i": i}
            )
            for i in range(start, min(n, start + 10_000))
        ]
        with c.uow() as uow:
            uow.outbox.append(workspace_id, events, now=1.8e9)
            uow.commit()
    return time.perf_counter() - started


def deliver(c: Container, connector_id: str, n: int, sink: SinkProcess) -> tuple[float, float]:
    """Resume one connector and run the worker's delivery loop until n events are acknowledged.

    (wall s, cpu s of this process); the clock stops once every outcome is recorded.
    """
    with c.uow() as uow:
        services.set_paused(uow=uow, connector_id=connector_id, paused=False)
    worker = DeliveryWorker(uow=c.uow, sender_factory=lambda: HttpSender(timeout=30), now=c.now)
    stop = threading.Event()
    wall, cpu = time.perf_counter(), time.process_time()
    thread = threading.Thread(target=worker.run, args=(stop, lambda: [connector_id]))
    thread.start()
    while sink.unique() < n:
        time.sleep(0.05)
    stop.set()
    thread.join()  # the loop records its last outcomes before it returns
    elapsed = time.perf_counter() - wall, time.process_time() - cpu
    with c.uow(readonly=True) as uow:
        delivered = services.connector_stats(uow=uow, connector_id=connector_id, now=c.now()).delivered
    assert delivered == n, delivered
    return elapsed


def bare_loop(payloads: list[bytes], size: int, url: str, width: int) -> tuple[float, float]:
    """Splice and POST the same batches with the worker's HTTP sender, `width` at a time, and no
    database; (wall s, cpu s)."""
    from cohorthub.config import Secret

    headers = request_headers(Secret("t0k3n"))
    sender = HttpSender(timeout=30)
    wall, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=width) as pool:

        def post(start: int) -> None:
            result = sender.send(url, headers, batch_body(payloads[start : start + size]))
            assert result.status == 200, result

        list(pool.map(post, range(0, len(payloads), size)))
    elapsed = time.perf_counter() - wall, time.process_time() - cpu
    sender.close()
    return elapsed


def sqlite_run(n: int, sizes: list[int], tmp: Path) -> dict[int, float]:
    """The SQLite figures: delivery vs the bare loop for each batch size; the bare loops' events/s."""
    c = bootstrap(Settings(database_url=f"sqlite:///{tmp / 'bench.sqlite'}"))
    with c.uow() as uow:
        ws, _ = workspaces.create_workspace(uow=uow, name="bench", now=c.now())
    ids = {}
    for size in sizes:
        with c.uow() as uow:
            conn = services.create_connector(
                uow=uow,
                workspace_id=ws.id,
                kind="http",
                url="http://127.0.0.1:1/",
                token="t0k3n",
                batch_size=size,
                now=c.now(),
            )
        with c.uow() as uow:
            services.set_paused(uow=uow, connector_id=conn.id, paused=True)
        ids[size] = conn.id
    seconds = queue_events(c, ws.id, n)
    print(f"queued {n:,} events in {seconds:.1f} s ({n / seconds:,.0f}/s)")
    with c.uow(readonly=True) as uow:
        payloads = [
            bytes(r[0]) for r in uow.conn.execute(outbox.select().with_only_columns(outbox.c.payload))
        ]
    width = WorkerOptions().in_flight
    baselines: dict[int, float] = {}
    for size in sizes:
        base: dict[int, tuple[float, float]] = {}
        for w in sorted({1, width}):
            base_sink = SinkProcess(tmp)
            base[w] = bare_loop(payloads, size, base_sink.url, w)
            base_sink.stop()
        sink = SinkProcess(tmp)
        with c.uow() as uow:
            uow.conn.execute(
                text("UPDATE currents_connectors SET url = :u WHERE id = :i"), {"u": sink.url, "i": ids[size]}
            )
            uow.commit()
        wall, cpu = deliver(c, ids[size], n, sink)
        assert sink.unique() == n
        sink.stop()
        b_wall, b_cpu = base[width]
        baselines[size] = n / b_wall
        print(
            f"sqlite batch {size:>5}: {n / wall:>9,.0f} events/s wall, {n / cpu:>9,.0f}/CPU-s (worker) "
            f"| bare loop, {width} in flight: {n / b_wall:>9,.0f}/s wall, {n / b_cpu:>9,.0f}/CPU-s "
            f"| ratio {b_wall / wall:.2f} wall, {b_cpu / cpu:.2f} CPU "
            f"| bare loop, 1 in flight: {n / base[1][0]:,.0f}/s wall"
        )
    c.close()
    return baselines


def pg_run(admin_url: str, n: int, tmp: Path, worker_counts: list[int], baseline: float | None) -> None:
    """PostgreSQL: 1 and 2 worker processes sharing one connector (batches of 100)."""
    for count in worker_counts:
        name = f"cohorthub_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.rsplit("/", 1)[0] + f"/{name}"
        try:
            c = bootstrap(Settings(database_url=url))
            with c.uow() as uow:
                ws, _ = workspaces.create_workspace(uow=uow, name="bench", now=c.now())
            sink = SinkProcess(tmp)
            with c.uow() as uow:
                conn_ = services.create_connector(
                    uow=uow,
                    workspace_id=ws.id,
                    kind="http",
                    url=sink.url,
                    token="t0k3n",
                    batch_size=100,
                    now=c.now(),
                )
            with c.uow() as uow:
                services.set_paused(uow=uow, connector_id=conn_.id, paused=True)
            queue_events(c, ws.id, n)
            with c.uow() as uow:
                services.set_paused(uow=uow, connector_id=conn_.id, paused=False)
            procs = [
                subprocess.Popen([*CLI, "currents", "worker", "--database", url], stderr=subprocess.DEVNULL)
                for _ in range(count)
            ]
            while sink.unique() == 0:  # timed from the first delivered event: process start-up excluded
                time.sleep(0.005)
            started = time.perf_counter()
            while sink.unique() < n:
                time.sleep(0.05)
            wall = time.perf_counter() - started
            cpus = [_cpu_seconds(p.pid) for p in procs]
            for p in procs:
                p.terminate()
                p.wait()
            ratio = f" | ratio {n / wall / baseline:.2f} wall to the bare loop" if baseline else ""
            print(
                f"postgresql {count} worker(s), batch 100: {n / wall:>9,.0f} events/s wall, "
                f"{n / sum(cpus):>9,.0f}/CPU-s (workers' CPU s: {' + '.join(f'{c:.1f}' for c in cpus)}, "
                f"start-up included){ratio} | {n:,} events"
            )
            sink.stop()
            c.close()
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Parse options and run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-sizes", default="100,1000")
    parser.add_argument("--pg", default=None, help="PostgreSQL admin URL (a temporary database is created)")
    parser.add_argument("--pg-events", type=int, default=None, help="events for the PostgreSQL runs")
    parser.add_argument("--pg-workers", default="1,2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baselines = sqlite_run(args.events, [int(s) for s in args.batch_sizes.split(",")], Path(tmp))
        if args.pg:
            workers = [int(w) for w in args.pg_workers.split(",")]
            pg_run(args.pg, args.pg_events or args.events, Path(tmp), workers, baselines.get(100))


if __name__ == "__main__":
    main()
