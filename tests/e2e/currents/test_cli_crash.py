"""The CLI end to end: currents-sink and `currents worker` as processes; kill -9 mid-batch loses nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from cohorthub.bootstrap import Container
from cohorthub.currents import envelope
from cohorthub.workspaces import services as workspaces
from tests.conftest import free_port, stop_process

NOW = 1_800_000_000.0
CLI = [sys.executable, "-m", "cohorthub.cli.main"]


def _cli(*args: str, db: str) -> dict[str, object]:
    out = subprocess.run(
        [*CLI, *args, "--database", db, "--json"], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _wait(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _sink_stats(port: int) -> dict[str, int]:
    try:
        return dict(httpx.get(f"http://127.0.0.1:{port}/stats", timeout=2).json())
    except httpx.HTTPError:
        return {"requests": 0, "received": 0, "unique": 0}


def test_kill_9_of_a_worker_mid_batch_loses_nothing(
    container: Container, database_url: str, tmp_path: Path
) -> None:
    with container.uow() as uow:
        ws, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    port = free_port()
    out = tmp_path / "events.jsonl"
    sink = subprocess.Popen(
        [
            *CLI,
            "currents-sink",
            "--port",
            str(port),
            "--token",
            "s3cr3t",
            "--out",
            str(out),
            "--delay",
            "0.05",
        ],
        stderr=subprocess.DEVNULL,
    )
    workers: list[subprocess.Popen[bytes]] = []
    try:
        _wait(lambda: _sink_stats(port)["requests"] == 0 and sink.poll() is None and _up(port))
        connector = _cli(
            "currents",
            "create",
            "--workspace",
            ws.id,
            "--kind",
            "heap",
            "--url",
            f"http://127.0.0.1:{port}/braze",
            "--token",
            "s3cr3t",
            "--batch-size",
            "50",
            db=database_url,
        )
        assert connector["token"] == "set"
        user = envelope.event_user(braze_id="b1")
        events = [
            envelope.custom_event(
                workspace_id=ws.id, user=user, name="e", time=NOW, custom_properties={"i": i}
            )
            for i in range(2_000)
        ]
        with container.uow() as uow:
            uow.outbox.append(ws.id, events, now=NOW)
            uow.commit()

        def start() -> subprocess.Popen[bytes]:
            proc = subprocess.Popen(
                [*CLI, "currents", "worker", "--database", database_url, "--lease", "2", "--timeout", "1"],
                stderr=subprocess.DEVNULL,
            )
            workers.append(proc)
            return proc

        first = start()
        _wait(lambda: _sink_stats(port)["unique"] >= 200)
        first.send_signal(signal.SIGKILL)  # mid-round: batches leased, some sent, outcomes unrecorded
        first.wait()
        assert _sink_stats(port)["unique"] < 2_000
        start()
        _wait(lambda: _sink_stats(port)["unique"] == 2_000)
        ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
        assert sorted(ids) == sorted(e.id for e in events)  # each once in the file: the sink dedupes
        stats = {}

        def settled() -> bool:
            nonlocal stats
            stats = _cli("currents", "stats", str(connector["id"]), db=database_url)
            return stats["queued"] == 0 and stats["in_flight"] == 0

        _wait(settled)
        assert stats["dropped"] == 0 and stats["dead_letters"] == 0
    finally:
        for proc in [*workers, sink]:
            stop_process(proc, timeout=10)


def _up(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/stats", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def test_cli_lists_pauses_replays_and_rejects_bad_input(container: Container, database_url: str) -> None:
    with container.uow() as uow:
        ws, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    created = _cli(
        "currents",
        "create",
        "--workspace",
        ws.id,
        "--kind",
        "http",
        "--url",
        "https://x.example/",
        "--events",
        "users.messages.*,users.behaviors.*",
        db=database_url,
    )
    cid = str(created["id"])
    assert _cli("currents", "pause", cid, db=database_url)["paused"] is True
    listed = subprocess.run(
        [*CLI, "currents", "list", "--database", database_url, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(listed.stdout)[0]["events"] == "users.messages.*,users.behaviors.*"
    assert _cli("currents", "replay", cid, "--since", "2h", db=database_url)["queued"] == 0
    bad = subprocess.run(
        [
            *CLI,
            "currents",
            "create",
            "--workspace",
            ws.id,
            "--kind",
            "s3",
            "--url",
            "https://x",
            "--database",
            database_url,
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 3 and "Connector kind must be one of: http, heap" in bad.stderr
    missing = subprocess.run(
        [*CLI, "currents", "stats", "nope", "--database", database_url], capture_output=True, text=True
    )
    assert missing.returncode == 5
    assert _cli("currents", "delete", cid, db=database_url)["deleted"] is True
