"""Bulk user import end to end: `POST /users/import` on the live server, and `cohorthub users import`."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from cohorthub.bootstrap import Container
from cohorthub.workspaces import services as workspaces
from tests.e2e.identity.conftest import NOW, Users, Workspace

EXE = str(Path(sys.executable).with_name("cohorthub"))
CSV = "external_id,first_name,country,plan:string,visits\nu1,Ann,ES,007,3\nu2,Bo,FR,free,x\n,No,ES,,\n"


def post(client: httpx.Client, body: bytes | str, key: str | None, media: str = "text/csv") -> httpx.Response:
    headers = {"content-type": media} | ({"authorization": f"Bearer {key}"} if key else {})
    return client.post("/users/import", content=body, headers=headers)


def user_count(c: Container) -> int:
    # A reader's transaction: a plain connection would BEGIN IMMEDIATE, wait for the import's writer
    # behind every chunk and, polled while an import runs, see nothing until it ended.
    with c.uow(readonly=True) as uow:
        return int(uow.conn.execute(text("SELECT count(*) FROM users")).scalar_one())


def test_upload_a_csv_then_json_lines(client: httpx.Client, workspace: Workspace) -> None:
    response = post(client, CSV, workspace.key)
    assert response.status_code == 201, response.text
    assert response.json() == {
        "message": "success",
        "rows": 3,
        "created": 2,
        "updated": 0,
        "rejected": 1,
        "committed": 3,
        "errors": [{"line": 4, "reason": "external_id must not be empty"}],
    }
    lines = '{"external_id": "u1", "visits": {"inc": 2}}\n{"external_id": "u3", "vip": true}\n'
    response = post(client, lines, workspace.key, "application/x-ndjson")
    assert response.status_code == 201, response.text
    assert (response.json()["created"], response.json()["updated"]) == (1, 1)
    users = {
        u["external_id"]: u for u in Users(client, workspace.key).export(external_ids=["u1", "u2", "u3"])
    }
    assert users["u1"]["custom_attributes"] == {"plan": "007", "visits": 5}
    assert users["u2"]["custom_attributes"] == {"plan": "free", "visits": "x"}
    assert users["u3"]["custom_attributes"] == {"vip": True}


def test_bad_files_are_refused_and_write_nothing(
    client: httpx.Client, workspace: Workspace, container: Container
) -> None:
    cases = [
        (
            b"external_id,plan\n\xff,pro\n",
            "text/csv",
            400,
            "The file is not UTF-8 text (invalid byte at offset 17)",
        ),
        (b"", "text/csv", 400, "The file is empty"),
        (b"first_name\nAnn\n", "text/csv", 400, "No identifier column: a column external_id, braze_id, or "),
        (b"external_id,plan\n", "text/csv", 400, "The file has no rows, only a header"),
        (b'{"external_id": "u1"}\n', "application/json", 415, "Content-Type must be text/csv or "),
    ]
    for body, media, status, message in cases:
        response = post(client, body, workspace.key, media)
        assert response.status_code == status, (body, response.text)
        assert response.json()["message"].startswith(message), response.text
    container.settings = dataclasses.replace(container.settings, import_max_bytes=64)
    response = post(client, CSV, workspace.key)
    assert response.status_code == 413
    assert response.json()["message"] == "Request body is larger than the limit of 64 bytes"
    assert user_count(container) == 0


def test_the_key_needs_the_users_import_permission(
    client: httpx.Client, workspace: Workspace, container: Container
) -> None:
    with container.uow() as uow:
        track_only = workspaces.create_rest_key(
            uow=uow, workspace_id=workspace.id, name="track", permissions=["users.track"], now=NOW
        )
    response = post(client, CSV, track_only.key)
    assert response.status_code == 403
    assert "users.import" in response.json()["message"]
    assert post(client, CSV, None).status_code == 401
    assert post(client, CSV, "not-a-key").status_code == 401
    assert user_count(container) == 0


def test_the_cli_imports_a_file_and_prints_the_summary(
    tmp_path: Path, database_url: str, workspace: Workspace, container: Container
) -> None:
    path = tmp_path / "users.csv"
    path.write_text(CSV)
    done = subprocess.run(
        [
            EXE,
            "users",
            "import",
            str(path),
            "--workspace",
            workspace.id,
            "--database",
            database_url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["created"], summary["rejected"], summary["committed"]) == (2, 1, 3)
    assert user_count(container) == 2
    path.write_bytes(b"first_name\nAnn\n")
    done = subprocess.run(
        [EXE, "users", "import", str(path), "--workspace", workspace.id, "--database", database_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "error: No identifier column" in done.stderr
    assert user_count(container) == 2


def _sigint_deliverable() -> None:
    # A child inherits blocked and ignored signals: Ctrl-C must reach it whatever this process did.
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_a_cli_import_and_says_what_is_committed(
    tmp_path: Path, database_url: str, workspace: Workspace, container: Container
) -> None:
    rows = 200_000
    path = tmp_path / "many.csv"
    path.write_text("external_id,first_name\n" + "".join(f"u{i},Ann\n" for i in range(rows)))
    args = [EXE, "users", "import", str(path), "--workspace", workspace.id, "--database", database_url]
    child = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_deliverable
    )
    deadline = time.monotonic() + 60
    while not user_count(container) and child.poll() is None:  # a first chunk is committed
        assert time.monotonic() < deadline, "no chunk committed"
        time.sleep(0.02)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    found = re.search(r"interrupted: the first ([\d,]+) rows are committed \(([\d,]+) users created", err)
    assert found, err
    committed, created = (int(n.replace(",", "")) for n in found.groups())
    assert 0 < committed == created == user_count(container) < rows
    assert "stopping after the chunk being written" in err
    assert "Traceback" not in err
    done = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["created"], summary["updated"]) == (rows - committed, committed)
    assert user_count(container) == rows
