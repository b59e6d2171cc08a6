"""`cohorthub serve` runs a delivery worker in its process (and `--no-worker` does not): real
processes on loopback, SQLite, events recorded through `/users/track`, received by `currents-sink`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from cohorthub.bootstrap import bootstrap
from cohorthub.config import Settings
from cohorthub.currents.retention import prune_outbox
from tests.conftest import free_port, stop_process

CLI = [sys.executable, "-m", "cohorthub.cli.main"]
TOKEN = "s3cr3t"
EVENTS = ["rented_movie", "watched_trailer", "rated_movie"]
DAY = 86400.0


def _cli(db: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [*CLI, *args, "--database", db, "--json"], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _wait(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def _process(*args: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        stop_process(proc)


@contextmanager
def _stack(tmp_path: Path, *serve_flags: str) -> Iterator[tuple[str, str, Path, str]]:
    """A sink and a server on ephemeral ports, a workspace and a connector: (db, api, sink file, key)."""
    db = f"sqlite:///{tmp_path / 'cohorthub.sqlite'}"
    sink_port, api_port = free_port(), free_port()
    out = tmp_path / "events.jsonl"
    sink_args = ["--port", str(sink_port), "--token", TOKEN, "--out", str(out)]
    with (
        _process("currents-sink", *sink_args),
        _process("serve", "--port", str(api_port), "--database", db, "--log-level", "warning", *serve_flags),
    ):
        api = f"http://127.0.0.1:{api_port}"
        _wait(lambda: _answers(f"http://127.0.0.1:{sink_port}/stats") and _answers(f"{api}/healthz"))
        ws = _cli(db, "workspace", "create", "Acme")
        _cli(
            db,
            "currents",
            "create",
            "--workspace",
            ws["workspace_id"],
            "--kind",
            "http",
            "--url",
            f"http://127.0.0.1:{sink_port}/braze",
            "--token",
            TOKEN,
            "--events",
            "users.behaviors.*",
            "--batch-size",
            "2",
        )
        _track(api, ws["rest_api_key"], EVENTS, first_name="Jon")
        yield db, api, out, ws["rest_api_key"]


def _track(api: str, key: str, names: list[str], **attributes: str) -> None:
    events = [{"external_id": "u1", "name": n, "time": "2024-03-01T12:00:00Z"} for n in names]
    response = httpx.post(
        f"{api}/users/track",
        json={"attributes": [{"external_id": "u1", **attributes}], "events": events},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.text


def _received(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def test_serve_delivers_tracked_events_to_the_sink(tmp_path: Path) -> None:
    with _stack(tmp_path) as (db, _api, out, _key):
        _wait(lambda: len(_received(out)) == len(EVENTS))
        received = _received(out)
        assert {e["event_type"] for e in received} == {"users.behaviors.CustomEvent"}
        assert sorted(e["properties"]["name"] for e in received) == sorted(EVENTS)
        assert len({e["id"] for e in received}) == len(EVENTS)
        assert {e["user"]["external_user_id"] for e in received} == {"u1"}
        _wait(lambda: _stats(db)["delivered"] == len(EVENTS))


def test_serve_with_no_worker_delivers_nothing_until_a_worker_runs(tmp_path: Path) -> None:
    with _stack(tmp_path, "--no-worker") as (db, _api, out, _key):
        assert _stats(db)["queued"] == len(EVENTS)
        time.sleep(6)  # longer than a worker's connector refresh (5 s) plus its poll interval
        assert _received(out) == []
        assert _stats(db)["delivered"] == 0
        # The standalone worker delivers them; with one request in flight, in the order they were recorded.
        with _process("currents", "worker", "--database", db, "--in-flight", "1"):
            _wait(lambda: len(_received(out)) == len(EVENTS))
        assert [e["properties"]["name"] for e in _received(out)] == list(EVENTS)


def test_events_tracked_after_retention_pruned_the_whole_outbox_are_delivered(tmp_path: Path) -> None:
    with _stack(tmp_path) as (db, api, out, key):
        _wait(lambda: _stats(db)["delivered"] == len(EVENTS))
        container = bootstrap(Settings(database_url=db), run_migrations=False)
        try:  # the real retention path, on a clock at which the delivered events are old
            report = prune_outbox(uow=container.uow, older_than=7 * DAY, now=time.time() + 8 * DAY)
        finally:
            container.close()
        assert report.removed == len(EVENTS)  # the outbox is empty: a quiet week

        _track(api, key, ["came_back"], last_name="Snow")
        _wait(lambda: len(_received(out)) == len(EVENTS) + 1)
        assert _received(out)[-1]["properties"]["name"] == "came_back"
        _wait(lambda: _stats(db)["delivered"] == len(EVENTS) + 1)


def _stats(db: str) -> dict[str, Any]:
    out = subprocess.run(
        [*CLI, "currents", "stats", "--database", db, "--json"], capture_output=True, text=True, check=True
    )
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    return rows[0]
