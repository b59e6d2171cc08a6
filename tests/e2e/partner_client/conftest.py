"""Fixtures for the end-to-end tests: a partner server on loopback and a CLI runner.

Tests that only check the outcome (membership and name after each sync) use ``endpoint``;
to run them against another server, give it the same small interface (url, partner, keys,
``members(cohort_id)``, ``name(cohort_id)``). Fault-injection tests need ``partner_server``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .partner_server import PartnerServer

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def partner_server() -> Iterator[PartnerServer]:
    with PartnerServer() as server:
        yield server


def cli_args(server: PartnerServer, state: Path, *extra: str) -> list[str]:
    """Arguments of ``sync run`` against ``server`` (keys as the server expects)."""
    return [
        "run",
        "--endpoint",
        server.url,
        "--partner",
        server.partner,
        "--partner-key",
        server.partner_key,
        "--data-import-key",
        "DIK",
        "--state",
        str(state),
        *extra,
    ]


def _signals_as_a_terminal_gives_them() -> None:
    """In the child before it runs: SIGINT delivered and not ignored, whatever this test process did.

    A child inherits its parent's blocked signals and ignored ones; a test of Ctrl-C must not depend
    on what earlier tests in the same process left behind.
    """
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli_process(args: list[str], **kwargs: object) -> subprocess.Popen[str]:
    """``python -m cohorthub.cli.sync ARGS`` as a child process."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "cohorthub.cli.sync", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_signals_as_a_terminal_gives_them,
        **kwargs,
    )


def signal_state(pid: int) -> str:
    """The process's blocked, ignored and caught signal masks (Linux), to explain a missed signal."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "(gone)"
    return " ".join(line for line in lines if line.startswith(("SigBlk", "SigIgn", "SigCgt")))
