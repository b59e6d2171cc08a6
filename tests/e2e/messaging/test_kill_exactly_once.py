"""kill -9 mid-campaign, then a restart: nobody gets the e-mail twice, and everyone either got it or
is counted in doubt (the few messages in flight when the worker died). Real worker processes, a real
SMTP server, both stores."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from cohorthub.bootstrap import Container
from cohorthub.messaging import services
from cohorthub.store.messaging.schema import sends
from tests.conftest import free_port
from tests.e2e.messaging.conftest import SmtpSink, wait_for
from tests.integration.segments import factories as f

USERS = 800
BATCH = 100


class SlowSink(SmtpSink):
    """An SMTP server that takes a moment per message, so that the kill lands mid-campaign."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.002)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp() -> Iterator[tuple[SmtpSink, int]]:
    sink, port = SlowSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def _worker(database_url: str, smtp_port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "COHORTHUB_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
           "COHORTHUB_MESSAGING_LEASE": "2", "COHORTHUB_MESSAGING_POLL": "0.1",
           "COHORTHUB_MESSAGING_BATCH": str(BATCH)}  # fmt: skip
    args = [sys.executable, "-m", "cohorthub.cli.main", "campaigns", "worker", "--database", database_url]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_kill_9_mid_campaign_then_restart_sends_nobody_twice(
    container: Container, database_url: str, slow_smtp: tuple[SmtpSink, int]
) -> None:
    sink, port = slow_smtp
    now = time.time()
    with container.uow() as uow:
        ws = f.workspace(uow.conn, now=now)
        for i in range(USERS):
            f.user(uow.conn, ws, now=now, external_id=f"u{i}", email=f"u{i}@example.com")
        uow.commit()
    message = {"from": "news@shop.test", "subject": "Hello", "body": "<p>Hi {{${user_id}}}</p>"}
    body = {"name": "Everyone", "channel": "email", "delivery": {"type": "now"}, "email": message}
    with container.uow() as uow:
        program = services.create_program(uow=uow, workspace_id=ws, kind="campaign", raw=body, now=now)
    with container.uow() as uow:
        services.launch_program(uow=uow, workspace_id=ws, program_id=program.id, now=now)

    first = _worker(database_url, port)
    try:
        wait_for(lambda: len(sink.to()) >= 200, timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    at_kill = len(sink.to())
    assert at_kill < USERS  # the kill landed mid-campaign

    second = _worker(database_url, port)
    try:

        def finished() -> bool:
            with container.uow(readonly=True) as uow:
                return all(j["state"] == "done" for j in uow.messaging.jobs.list(program.id))

        wait_for(finished, timeout=90)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    received = Counter(sink.to())
    assert max(received.values()) == 1  # nobody twice
    with container.uow(readonly=True) as uow:
        rows = list(
            uow.conn.execute(select(sends.c.address, sends.c.state).where(sends.c.program_id == program.id))
        )
    states = Counter(state for _, state in rows)
    in_doubt = {a for a, s in rows if s == "unknown"}
    assert len(rows) == USERS and set(states) <= {"delivered", "unknown"}
    assert set(received) | in_doubt == {f"u{i}@example.com" for i in range(USERS)}  # nobody lost unaccounted
    # at most two batches: the one on the wire and the next, reserved while it was sent
    assert states["unknown"] <= 2 * BATCH
    assert {a for a, s in rows if s == "delivered"} <= set(received)
