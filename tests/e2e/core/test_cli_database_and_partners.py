"""The CLI as a newcomer meets it: which database, no silent creation, one-line errors, 80 columns,
and onboarding a real partner (a given key value, the data-import-key-only mode, the REST endpoint)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cohorthub.bootstrap import Container
from cohorthub.cli.main import app
from tests.conftest import LiveServer

runner = CliRunner(env={"COLUMNS": "80", "COHORTHUB_PUBLIC_URL": "", "COHORTHUB_DATABASE_URL": ""})
HEAP_KEY = "hp_live_0123456789abcdefABCDEF"


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Exit code, stdout, stderr."""
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_a_command_never_creates_a_database_and_says_which_it_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run("workspace", "list")
    missing = tmp_path / "var" / "cohorthub.sqlite"
    assert code == 5 and not missing.exists()
    assert f"No cohorthub database at {missing}" in err and "cohorthub init" in err
    assert len(err.strip().splitlines()) == 2  # the database line and the error line
    code, out, err = run("init")
    assert code == 0 and missing.exists() and f"sqlite:///{missing}" in out
    code, out, err = run("workspace", "list")
    assert code == 0 and f"database: sqlite:///{missing}" in err


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("foo://bar", "Unsupported database URL"),
        ("notaurl", "Not a database URL"),
        ("mysql://u:pw@localhost/db", "Unsupported database URL"),
        ("postgresql://postgres@127.0.0.1:1/test", "Cannot open postgresql://postgres@127.0.0.1:1/test"),
        ("postgresql://postgres@127.0.0.1:5432/cohorthub_no_such_db", "does not exist"),
    ],
)
def test_bad_database_values_are_one_line(url: str, text: str) -> None:
    code, out, err = run("workspace", "list", "--database", url)
    assert code != 0 and out == ""
    error_lines = [line for line in err.splitlines() if not line.startswith("database:")]
    assert len(error_lines) == 1 and text in error_lines[0], err


def test_help_shows_flags_as_flags_and_whole_variable_names() -> None:
    code, out, _ = run("partner", "rotate-key", "--help")
    assert code == 0 and "<bool>" not in out
    assert "$COHORTHUB_KEY_ROTATION_GRACE" in out and "$COHORTHUB_DATABASE_URL" in out
    assert all(len(line) <= 80 for line in out.splitlines())


def test_onboarding_a_real_partner(database_url: str) -> None:
    db = ["--database", database_url]
    code, out, _ = run("workspace", "create", "Acme", "--json", *db)
    ws = json.loads(out)["workspace_id"]
    code, out, _ = run("partner", "add-key", "heap", "--from-stdin", *db, stdin=HEAP_KEY + "\n")
    assert code == 0 and HEAP_KEY not in out and "fingerprint" in out
    code, _, err = run("partner", "add-key", "heap", "--from-stdin", *db, stdin=HEAP_KEY + "\n")
    assert code == 6 and "already registered" in err
    code, out, _ = run(
        "partner", "enable", "heap", "--workspace", ws, "--data-import-key-only",
        "--public-url", "https://cohorts.example.com/", *db,
    )  # fmt: skip
    assert code == 0, out
    lines = out.splitlines()  # a vertical record at 80 columns: nothing cut
    assert "rest_endpoint    https://cohorts.example.com" in lines and all(len(x) <= 80 for x in lines)
    assert "auth_mode        data_import_key_only" in lines
    code, out, _ = run("partner", "show", "heap", "--json", *db)
    shown = json.loads(out)
    assert shown["rest_endpoint"] is None  # nothing configured here and no serve ran on this database
    assert len(shown["keys"]) == 1 and shown["workspaces"][0]["auth_mode"] == "data_import_key_only"
    code, _, _ = run("partner", "auth", "heap", "--workspace", ws, "--mode", "partner_key", *db)
    assert code == 0
    code, _, err = run("partner", "auth", "heap", "--workspace", ws, "--mode", "anything", *db)
    assert code == 3 and "Unknown authentication mode" in err


def test_a_real_partner_key_over_http_registered_or_by_data_import_key_alone(
    container: Container, live_server: LiveServer
) -> None:
    db = ["--database", container.settings.database_url]
    ws = json.loads(run("workspace", "create", "Acme", "--json", *db)[1])["workspace_id"]
    dik = json.loads(run("partner", "enable", "heap", "--workspace", ws, "--json", *db)[1])["data_import_key"]
    body = {
        "client_secret": dik,
        "cohort_id": "heap-1",
        "name": "Trial",
        "created_at": "2026-11-01T10:00:00Z",
    }
    url = f"{live_server.url}//partners/heap/cohorts"  # a client joining `https://host/` + `/partners/…`
    refused = httpx.post(url, json={**body, "partner_api_key": HEAP_KEY})
    assert refused.status_code == 401 and refused.json()["message"] == "Invalid Partner API key"
    run("partner", "auth", "heap", "--workspace", ws, "--mode", "data_import_key_only", *db)
    accepted = httpx.post(url, json={**body, "partner_api_key": HEAP_KEY})
    assert accepted.status_code == 201, accepted.text
    run("partner", "auth", "heap", "--workspace", ws, "--mode", "partner_key", *db)
    run("partner", "add-key", "heap", "--from-stdin", *db, stdin=HEAP_KEY + "\n")
    registered = httpx.post(url, json={**body, "partner_api_key": HEAP_KEY})
    assert registered.status_code == 201, registered.text
    seen = json.loads(run("partner", "show", "heap", "--json", *db)[1])["workspaces"][0]["partner_keys_seen"]
    assert [s["requests"] for s in seen] == [1]  # only the request accepted by the data import key alone


def test_sync_status_does_not_create_a_state_file(tmp_path: Path) -> None:
    state = tmp_path / "var" / "sync-state.sqlite"
    result = runner.invoke(app, ["sync", "status", "--state", str(state)])
    assert result.exit_code != 0 and f"no sync state at {state}" in " ".join(result.stderr.split())
    assert not state.exists()
