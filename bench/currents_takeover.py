"""Currents crash recovery: how long after `kill -9` of `cohorthub serve` mid-delivery a restarted
server has delivered every event, vs the same delivery without a crash, in the same run.

    .venv/bin/python bench/currents_takeover.py                      # SQLite under a temp dir
    .venv/bin/python bench/currents_takeover.py --database postgresql://postgres@127.0.0.1:5432/bench

A `currents-sink` process answers each request after `--delay` seconds; the server's worker leases
every batch in its first round and is killed once `--kill-at` events arrived. Figures: seconds from
the kill to the last event at the sink (the takeover: the dead server's leases run out, default
20 s, then the restarted server sends them), and the baseline: seconds an uninterrupted server takes
to deliver the same events from its start. Process start-up (imports, migrations) is in both.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from cohorthub.bootstrap import bootstrap
from cohorthub.config import Settings
from cohorthub.currents import envelope, services
from cohorthub.workspaces import services as workspaces

CLI = [sys.executable, "-m", "cohorthub.cli.main"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.05)


def _unique(port: int) -> int:
    try:
        return int(httpx.get(f"http://127.0.0.1:{port}/stats", timeout=2).json()["unique"])
    except httpx.HTTPError:
        return -1


def _serve(db: str) -> subprocess.Popen[bytes]:
    args = ["serve", "--port", str(_free_port()), "--database", db, "--log-level", "warning"]
    return subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(db: str, tmp: Path, *, events: int, delay: float, kill_at: int | None) -> float:
    """Seconds to deliver `events`: from the kill when `kill_at` is set, else from the server's start."""
    container = bootstrap(Settings.from_env(database_url=db))
    sink_port = _free_port()
    out = tmp / f"events-{sink_port}.jsonl"
    sink_args = ["--port", str(sink_port), "--token", "t0k3n", "--out", str(out), "--delay", str(delay)]
    sink = subprocess.Popen([*CLI, "currents-sink", *sink_args], stderr=subprocess.DEVNULL)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        _wait(lambda: _unique(sink_port) == 0, 60)
        with container.uow() as uow:
            ws, _ = workspaces.create_workspace(uow=uow, name="bench", now=time.time())
        with container.uow() as uow:
            url = f"http://127.0.0.1:{sink_port}/braze"
            services.create_connector(
                uow=uow,
                workspace_id=ws.id,
                kind="http",
                url=url,
                token="t0k3n",
                batch_size=10,
                now=time.time(),
            )
        user = envelope.event_user(braze_id="b1")
        batch = [
            envelope.custom_event(
                workspace_id=ws.id, user=user, name="e", time=time.time(), custom_properties={}
            )
            for _ in range(events)
        ]
        with container.uow() as uow:
            uow.outbox.append(ws.id, batch, now=time.time())
            uow.commit()
        started = time.monotonic()
        servers.append(_serve(db))
        if kill_at is not None:
            _wait(lambda: _unique(sink_port) >= kill_at, 120)
            servers[0].send_signal(signal.SIGKILL)
            servers[0].wait()
            started = time.monotonic()
            print(f"  killed with {_unique(sink_port)} of {events} events delivered; restarting")
            servers.append(_serve(db))
        _wait(lambda: _unique(sink_port) == events, 300)
        return time.monotonic() - started
    finally:
        for proc in [*servers, sink]:
            _stop(proc)
        container.close()


def main() -> None:
    """Measure and print the takeover time and its ratio to an uninterrupted delivery."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database", help="a PostgreSQL URL (an empty database); default: SQLite in a temp dir"
    )
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds the sink takes per request")
    parser.add_argument("--kill-at", type=int, default=100, help="events delivered before the kill")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        db = args.database or f"sqlite:///{tmp / 'takeover.sqlite'}"
        print(f"{args.events} events in batches of 10, sink delay {args.delay} s, store {db.split(':')[0]}")
        baseline = run(db, tmp, events=args.events, delay=args.delay, kill_at=None)
        print(f"uninterrupted delivery (from the server's start): {baseline:.1f} s")
        db2 = args.database or f"sqlite:///{tmp / 'takeover2.sqlite'}"
        takeover = run(db2, tmp, events=args.events, delay=args.delay, kill_at=args.kill_at)
        print(f"after kill -9 and a restart, every event delivered {takeover:.1f} s after the kill")
        print(f"ratio to the uninterrupted delivery: {takeover / baseline:.2f}")


if __name__ == "__main__":
    main()
