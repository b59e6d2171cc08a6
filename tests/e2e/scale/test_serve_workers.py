"""`cohorthub serve --workers N`: several API processes on one PostgreSQL answer exactly; SQLite refuses."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert

from cohorthub.bootstrap import Container
from cohorthub.partners import services as partners
from cohorthub.store.tables import users
from cohorthub.workspaces import services as workspaces
from tests.conftest import free_port, stop_process

NOW = 1_800_000_000.0
CLI = [sys.executable, "-m", "cohorthub.cli.main"]


@pytest.fixture
def two_processes(container: Container, database_url: str) -> Iterator[str]:
    """`serve --workers 2` on the test database; its base URL."""
    if not database_url.startswith("postgresql"):
        pytest.skip("several API processes need PostgreSQL")
    port = free_port()
    cmd = [*CLI, "serve", "--workers", "2", "--no-worker", "--port", str(port), "--database", database_url]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield url
    finally:
        stop_process(proc, timeout=30)


def test_every_process_answers_exact_sizes_after_each_write(container: Container, two_processes: str) -> None:
    with container.uow() as uow:
        ws, rest = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    with container.uow() as uow:
        pk = partners.issue_partner_key(uow=uow, partner="heap", now=NOW)
    with container.uow() as uow:
        secret = partners.enable_partner(uow=uow, workspace_id=ws.id, partner="heap", now=NOW).data_import_key
    with container.engine.begin() as conn:
        rows = [
            {"workspace_id": ws.id, "braze_id": f"{i:024x}", "external_id": f"u{i}", "created_at": NOW,
             "updated_at": NOW, "custom_attributes": "{}"}
            for i in range(400)
        ]  # fmt: skip
        conn.execute(insert(users), rows)
    keys = {"partner_api_key": pk, "client_secret": secret, "cohort_id": "c1"}
    auth = {"authorization": f"Bearer {rest.key}"}
    url = two_processes
    created = httpx.post(
        f"{url}/partners/heap/cohorts", json={**keys, "name": "C1", "created_at": "2024-01-01T00:00:00Z"}
    )
    assert created.status_code == 201, created.text
    plan = {"type": "custom_attribute", "attribute": "plan", "data_type": "string", "op": "equals"}
    cohort = {"type": "cohort", "partner": "heap", "cohort_id": "c1", "op": "includes"}
    segment = {"name": "c1 pro", "filter": {"and": [cohort, {**plan, "value": "pro"}]}}
    sid = httpx.post(f"{url}/segments", json=segment, headers=auth).json()["id"]
    members: set[int] = set()
    pro: set[int] = set()
    for step in range(10):  # each request on a new connection: the two processes share the work
        entering = range(step * 40, step * 40 + 40)
        leaving = sorted(members)[:10]
        changes = [{"user_ids": [f"u{i}" for i in entering]}]
        if leaving:
            changes.append({"user_ids": [f"u{i}" for i in leaving], "should_remove": True})
        r = httpx.post(f"{url}/partners/heap/cohorts/users", json={**keys, "cohort_changes": changes})
        assert r.status_code == 201, r.text
        members = (members | set(entering)) - set(leaving)
        tracked = [i for i in entering if i % 3 == 0]
        body = {"attributes": [{"external_id": f"u{i}", "plan": "pro"} for i in tracked]}
        assert httpx.post(f"{url}/users/track", json=body, headers=auth).status_code == 201
        pro |= set(tracked)
        for _ in range(4):
            size = httpx.get(f"{url}/segments/{sid}/size", headers=auth).json()["size"]
            assert size == len(members & pro), step


def test_sqlite_refuses_several_processes(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'one.sqlite'}"
    out = subprocess.run(
        [*CLI, "serve", "--workers", "2", "--database", db], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "SQLite allows one writing process" in out.stderr
