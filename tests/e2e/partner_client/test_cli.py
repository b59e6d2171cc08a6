"""``cohorthub sync`` end to end: options, output, exit codes, state commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohorthub.cli.sync import app, parse_interval
from cohorthub.partner_client import ConfigurationError

from .conftest import cli_args
from .partner_server import PartnerServer

runner = CliRunner()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run_json(args: list[str]) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_run_then_status_then_reset(partner_server: PartnerServer, tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    source = write(
        tmp_path / "m.csv", "id_type,id\nexternal_id,u1\ndevice_id,d1\nalias:email,a@x.com\nexternal_id,u1\n"
    )
    args = cli_args(partner_server, state, "--cohort-id", "trial", "--name", "Trial", "--source", str(source))
    code, out = run_json(args)
    assert code == 0
    assert (out["status"], out["adds"], out["removes"], out["members"], out["name_sent"]) == (
        "ok",
        3,
        0,
        3,
        True,
    )
    assert partner_server.members("trial") == {
        ("external_id", "u1"),
        ("device_id", "d1"),
        ("alias:email", "a@x.com"),
    }

    write(source, "id_type,id\nexternal_id,u1\nexternal_id,u2\n")
    code, out = run_json(args)
    assert (code, out["adds"], out["removes"], out["name_sent"]) == (0, 1, 2, False)
    assert out["by_id_type"] == {
        "alias:email": {"adds": 0, "removes": 1},
        "device_id": {"adds": 0, "removes": 1},
        "external_id": {"adds": 1, "removes": 0},
    }

    status = runner.invoke(app, ["status", "--state", str(state), "--json"])
    (row,) = json.loads(status.stdout)["cohorts"]
    assert (row["cohort_id"], row["name"], row["members"], row["adds_sent"], row["removes_sent"]) == (
        "trial",
        "Trial",
        2,
        4,
        2,
    )
    assert row["last_success_at"] is not None and row["failures"] == 0
    assert "DIK" not in state.read_bytes().decode("latin-1")

    table = runner.invoke(app, ["status", "--state", str(state)])
    assert "trial" in table.stdout and "Trial" in table.stdout

    reset = runner.invoke(app, ["reset", "--state", str(state), "--cohort-id", "trial"])
    assert reset.exit_code == 0 and "reset 1 cohort" in reset.stdout
    code, out = run_json(args)
    assert (code, out["adds"], out["name_sent"]) == (0, 2, True)


def test_dry_run_prints_the_diff_and_sends_nothing(partner_server: PartnerServer, tmp_path: Path) -> None:
    source = write(tmp_path / "m.txt", "\n".join(f"user{i}" for i in range(12)))
    args = cli_args(
        partner_server, tmp_path / "s.sqlite", "--cohort-id", "c", "--name", "C", "--source", str(source)
    )
    result = runner.invoke(app, [*args, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "c: would send name, 12 adds and 0 removes; 12 members" in result.stdout
    assert "sample adds: user" in result.stdout
    assert partner_server.requests == []


def test_sql_source_and_id_type_option(partner_server: PartnerServer, tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "m.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE m (email TEXT)")
        conn.executemany("INSERT INTO m VALUES (?)", [("a@x.com",), ("b@x.com",), (None,)])
    conn.close()
    args = cli_args(partner_server, tmp_path / "s.sqlite", "--cohort-id", "c", "--name", "C")
    args += [
        "--source-sql",
        "SELECT email FROM m",
        "--source-url",
        f"sqlite:///{db}",
        "--id-type",
        "alias:email",
    ]
    code, out = run_json(args)
    assert (code, out["adds"]) == (0, 2)
    assert partner_server.members("c") == {("alias:email", "a@x.com"), ("alias:email", "b@x.com")}


@pytest.mark.parametrize(
    ("setup", "extra", "code", "text"),
    [
        ("none", ["--every", "soon"], 2, "invalid interval"),
        ("none", ["--id-type", "phone"], 2, "unknown id type"),
        ("missing", [], 3, "cannot read"),
        ("auth", [], 5, "Invalid Partner API key"),
        ("reject", [], 6, "`cohort_id` must be a valid string"),
        ("unavailable", ["--max-attempts", "1"], 7, "HTTP 503"),
    ],
)
def test_errors_map_to_exit_codes(
    partner_server: PartnerServer, tmp_path: Path, setup: str, extra: list[str], code: int, text: str
) -> None:
    source = write(tmp_path / "m.csv", "u1\n") if setup != "missing" else tmp_path / "missing.csv"
    args = cli_args(
        partner_server, tmp_path / "s.sqlite", "--cohort-id", "c", "--name", "C", "--source", str(source)
    )
    if setup == "auth":
        partner_server.partner_key = "other"
    if setup == "reject":
        partner_server.fail_next(400, message="`cohort_id` must be a valid string")
    if setup == "unavailable":
        partner_server.fail_next(503)
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == code, result.output
    assert text in result.stderr
    code_json, out = (
        run_json([*args, *extra]) if setup not in {"reject", "unavailable"} else (code, {"exit_code": code})
    )
    assert code_json == code and out["exit_code"] == code
    if setup == "auth":
        assert "hint:" in result.stderr and "--partner-key" in result.stderr
        assert result.stderr.count("--partner-key") == 1  # the hint is printed once
    if setup == "reject":
        assert "offending part of the request: cohort_id='c'" in result.stderr


def test_exactly_one_source_is_required(partner_server: PartnerServer, tmp_path: Path) -> None:
    args = cli_args(partner_server, tmp_path / "s.sqlite", "--cohort-id", "c", "--name", "C")
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "exactly one of --source" in result.stderr


def test_parse_interval() -> None:
    assert [parse_interval(t) for t in ("90", "30s", "15m", "1h30m", "1d")] == [90, 30, 900, 5400, 86400]
    for bad in ("", "0", "m", "15x", "-5m"):
        with pytest.raises(ConfigurationError):
            parse_interval(bad)
