"""Fixtures for the end-to-end tests: a partner server on loopback and a CLI runner.

Tests that only check the outcome (membership and name after each sync) use ``endpoint``;
to run them against another server, give it the same small interface (url, partner, keys,
``members(cohort_id)``, ``name(cohort_id)``). Fault-injection tests need ``partner_server``.
"""

from __future__ import annotations

import os
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


def run_cli_process(args: list[str], **kwargs: object) -> subprocess.Popen[str]:
    """``python -m cohorthub.cli.sync ARGS`` as a child process."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "cohorthub.cli.sync", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
