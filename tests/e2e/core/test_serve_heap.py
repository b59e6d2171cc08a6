"""`cohorthub serve` leaves the objects it made while starting out of garbage collection: a full
collection walked them all (~40 ms holding the interpreter lock, every second or two under writes),
the tail of every request in flight. A real server process on loopback, read through `/metrics`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port, stop_process

CLI = [sys.executable, "-m", "cohorthub.cli.main"]


def _frozen(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("cohorthub_gc_frozen_objects "):
            return float(line.split()[1])
    raise AssertionError("no cohorthub_gc_frozen_objects in /metrics")


def test_a_serving_process_has_frozen_what_startup_left_alive(tmp_path: Path) -> None:
    port = free_port()
    db = f"sqlite:///{tmp_path / 'heap.sqlite'}"
    args = ["serve", "--port", str(port), "--database", db, "--no-worker", "--no-messaging"]
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.1)
        assert response.status_code == 200
        # Modules, classes and SQL metadata: over a hundred thousand objects; never none.
        assert _frozen(response.text) > 10_000
    finally:
        stop_process(proc)
