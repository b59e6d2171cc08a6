"""Kill the client mid-sync and show the resumed sync converges to exactly the source."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from cohorthub.partner_client import StateStore, Target
from cohorthub.partner_client.model import Secret

from .conftest import cli_args, run_cli_process, signal_state
from .partner_server import PartnerServer


def write_ids(path: Path, ids: list[str]) -> Path:
    partial = path.with_suffix(".partial")
    partial.write_text("\n".join(ids) + "\n", encoding="utf-8")
    partial.replace(path)  # atomic: a scheduled sync never reads a half-written file
    return path


def acknowledged(server: PartnerServer, state: Path, cohort_id: str) -> set[tuple[str, str]]:
    store = StateStore(state)
    target = Target(server.url, server.partner, Secret(server.partner_key), Secret("DIK"))
    try:
        return store.previous(store.ensure(target, cohort_id).key).all_members()
    finally:
        store.close()


def run_to_end(args: list[str]) -> dict[str, object]:
    process = run_cli_process([*args, "--json"])
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def test_killed_mid_sync_resumes_without_losing_a_removal(
    partner_server: PartnerServer, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite"
    before = [f"u{i}" for i in range(5000)]
    after = before[3000:] + [f"n{i}" for i in range(12_000)]  # 3,000 exits, 12,000 entries
    source = write_ids(tmp_path / "members.csv", before)
    args = cli_args(partner_server, state, "--cohort-id", "c", "--name", "C", "--source", str(source))
    assert run_to_end(args)["adds"] == 5000

    write_ids(source, after)
    received_before = partner_server.identifiers_received()
    partner_server.hold_after(len(partner_server.users_requests()) + 2)
    process = run_cli_process(args)
    assert partner_server.held.wait(timeout=30), "the client never reached the third chunk"
    process.kill()  # SIGKILL: no cleanup, no chance to record anything
    process.communicate(timeout=10)
    partner_server.release()

    # two chunks of exits were acknowledged and recorded; the third was applied by the server only
    recorded = acknowledged(partner_server, state, "c")
    leaving = {("external_id", i) for i in before[:3000]}
    assert len(recorded) == 3000
    assert recorded >= {("external_id", i) for i in before[3000:]}
    assert len(recorded & leaving) == 1000
    assert partner_server.members("c") == {("external_id", i) for i in before[3000:]}

    resumed = run_to_end(args)
    assert (resumed["removes"], resumed["adds"], resumed["name_sent"]) == (1000, 12_000, False)
    assert partner_server.members("c") == {("external_id", i) for i in after}
    assert acknowledged(partner_server, state, "c") == partner_server.members("c")
    # nothing was sent twice except the chunk in flight at the kill
    assert partner_server.identifiers_received() - received_before == 3000 + 1000 + 12_000


def test_every_keeps_syncing_and_stops_cleanly_on_ctrl_c(
    partner_server: PartnerServer, tmp_path: Path
) -> None:
    source = write_ids(tmp_path / "members.csv", ["u1", "u2"])
    args = cli_args(partner_server, tmp_path / "s.sqlite", "--cohort-id", "c", "--name", "C")
    process = run_cli_process([*args, "--source", str(source), "--every", "0.2s", "--json"])
    assert process.stdout is not None
    first = json.loads(process.stdout.readline())
    assert (first["adds"], first["removes"]) == (2, 0)
    write_ids(source, ["u2", "u3"])
    later = [json.loads(process.stdout.readline()) for _ in range(3)]  # a tick sees the change
    assert any((run["adds"], run["removes"]) == (1, 1) for run in later)
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        state = signal_state(process.pid)
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"still running 20 s after SIGINT; {state}; stderr: {err[-2000:]}; stdout: {out[-1000:]}")
    assert process.returncode in (0, 130), err
    assert "interrupted" in err
    assert partner_server.members("c") == {("external_id", "u2"), ("external_id", "u3")}
