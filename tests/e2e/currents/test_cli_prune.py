"""`cohorthub currents prune` as a process: dry run, prune, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from sqlalchemy import func, select

from cohorthub.bootstrap import Container
from cohorthub.currents import envelope
from cohorthub.store.tables import outbox
from cohorthub.workspaces import services as workspaces

CLI = [sys.executable, "-m", "cohorthub.cli.main", "currents", "prune"]
DAY = 86400.0


def _run(*args: str, db: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args, "--database", db], capture_output=True, text=True, env=env)


def _count(c: Container) -> int:
    with c.uow(readonly=True) as uow:
        return int(uow.conn.execute(select(func.count()).select_from(outbox)).scalar_one())


def _record(c: Container, workspace: str, n: int, *, now: float) -> None:
    user = envelope.event_user(braze_id="639a35d192b0df004d06514c", external_id="u1")
    events = [
        envelope.custom_event(
            workspace_id=workspace, user=user, name="played", time=now, custom_properties={}
        )
        for _ in range(n)
    ]
    with c.uow() as uow:
        uow.outbox.append(workspace, events, now=now)
        uow.commit()


def test_prune_dry_run_then_prune(container: Container, database_url: str) -> None:
    now = time.time()
    with container.uow() as uow:
        ws, _ = workspaces.create_workspace(uow=uow, name="Acme", now=now)
    _record(container, ws.id, 6, now=now - 10 * DAY)
    _record(container, ws.id, 4, now=now - 2 * DAY)

    dry = _run("--dry-run", "--json", db=database_url)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["removed"] == 6 and json.loads(dry.stdout)["dry_run"] is True
    assert _count(container) == 10

    done = _run("--older-than", "36h", "--json", db=database_url)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["removed"], result["older_than_seconds"]) == (10, 36 * 3600.0)
    assert _count(container) == 0


def test_a_bad_period_is_refused_and_changes_nothing(container: Container, database_url: str) -> None:
    now = time.time()
    with container.uow() as uow:
        ws, _ = workspaces.create_workspace(uow=uow, name="Acme", now=now)
    _record(container, ws.id, 3, now=now - 10 * DAY)
    for bad in ("0", "-3d", "soon", "7w"):
        out = _run("--older-than", bad, "--json", db=database_url)
        assert out.returncode != 0
        assert "--older-than must be a positive duration" in out.stderr
    assert _count(container) == 3
