"""The operator's commands, run as a user runs them: the installed `cohorthub` executable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).with_name("cohorthub"))


def cli(*args: str, database: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `cohorthub ARGS --database URL`."""
    return subprocess.run(
        [EXE, *args, "--database", database], capture_output=True, text=True, check=check, timeout=60
    )


def test_operator_flow_with_json_output(database_url: str) -> None:
    ws = json.loads(cli("workspace", "create", "Acme", "--json", database=database_url).stdout)
    assert set(ws) == {"workspace_id", "name", "rest_api_key"} and ws["name"] == "Acme"
    pk = json.loads(cli("partner", "issue-key", "heap", "--json", database=database_url).stdout)
    assert pk["partner"] == "heap" and len(pk["partner_api_key"]) == 36
    enabled = json.loads(
        cli(
            "partner", "enable", "heap", "--workspace", ws["workspace_id"], "--json", database=database_url
        ).stdout
    )
    assert enabled["workspace_id"] == ws["workspace_id"] and enabled["data_import_key"]
    assert enabled["rest_endpoint"] is None  # no `serve` ran on this database and no public URL is set
    listed = json.loads(cli("workspace", "list", "--json", database=database_url).stdout)
    assert [w["workspace_id"] for w in listed] == [ws["workspace_id"]]
    rotated = json.loads(
        cli(
            "partner",
            "rotate-key",
            "heap",
            "--workspace",
            ws["workspace_id"],
            "--grace",
            "0",
            "--json",
            database=database_url,
        ).stdout
    )
    assert rotated["data_import_key"] != enabled["data_import_key"]
    disabled = json.loads(
        cli(
            "partner", "disable", "heap", "--workspace", ws["workspace_id"], "--json", database=database_url
        ).stdout
    )
    assert disabled["enabled"] is False


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("partner", "issue-key", "nosuch"), 5, "Unknown partner: nosuch"),
        (("partner", "enable", "heap", "--workspace", "missing"), 5, "No workspace with id missing"),
        (("workspace", "create", "  "), 3, "Workspace name must be"),
    ],
)
def test_errors_exit_with_their_code(database_url: str, args: tuple[str, ...], code: int, text: str) -> None:
    result = cli(*args, database=database_url, check=False)
    assert result.returncode == code
    assert text in " ".join(result.stderr.split())


def test_enabling_twice_is_refused(database_url: str) -> None:
    ws = json.loads(cli("workspace", "create", "Acme", "--json", database=database_url).stdout)
    cli("partner", "enable", "heap", "--workspace", ws["workspace_id"], database=database_url)
    again = cli(
        "partner", "enable", "heap", "--workspace", ws["workspace_id"], database=database_url, check=False
    )
    assert again.returncode == 6
    assert "already enabled" in again.stderr
