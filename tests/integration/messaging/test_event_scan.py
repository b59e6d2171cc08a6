"""The event scanner on the real stores: events no active program reacts to cost no user reads and no
extra rounds; the events that matter are still reacted to, with their users read once per workspace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event as sa_event

from cohorthub.bootstrap import Container
from cohorthub.messaging import services
from cohorthub.messaging.ports import MemoryEmailTransport, MemoryWebhookTransport
from cohorthub.runtimes import messaging_runtime
from tests.integration.messaging.test_campaign_flow import _setup, campaign
from tests.integration.segments import factories as f


@contextmanager
def _user_reads(c: Container) -> Iterator[list[str]]:
    """The statements that read the users table's rows while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        text = " ".join(statement.split()).lower()
        if text.startswith("select") and " from users " in f"{text} ":
            seen.append(text)

    sa_event.listen(c.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(c.engine, "before_cursor_execute", record)


def _launch(c: Container, ws: str, body: dict[str, Any]) -> None:
    with c.uow() as uow:
        program = services.create_program(
            uow=uow, workspace_id=ws, kind="campaign", raw=body, now=time.time()
        )
    with c.uow() as uow:
        services.launch_program(uow=uow, workspace_id=ws, program_id=program.id, now=time.time())


def test_events_no_program_reacts_to_read_no_user_and_let_the_worker_pause(container: Container) -> None:
    ws, nums = _setup(container, n=3)
    rt = messaging_runtime(container, email=MemoryEmailTransport(), webhook=MemoryWebhookTransport())
    _launch(container, ws, campaign(delivery={"type": "action", "event": "bought"}))
    rt.reactions.scan_events()  # the scanners start after what is already there
    with container.uow() as uow:
        for i in range(40):
            f.event(uow.conn, ws, nums[i % 3], f"viewed-{i}", at=time.time())
        uow.commit()
    with _user_reads(container) as reads:
        done = rt.reactions.scan_events()
    assert (done, reads) == (0, [])  # nothing to do: the worker waits its poll before the next round
    assert rt.reactions.scan_events() == 0  # and the cursor moved past them


def test_events_that_matter_are_reacted_to_with_one_user_read(container: Container) -> None:
    ws, nums = _setup(container, n=3)
    email = MemoryEmailTransport()
    rt = messaging_runtime(container, email=email, webhook=MemoryWebhookTransport())
    _launch(container, ws, campaign(delivery={"type": "action", "event": "bought"}))
    rt.reactions.scan_events()
    with container.uow() as uow:
        for i, num in enumerate(nums[:3]):
            f.event(uow.conn, ws, num, "viewed", at=time.time())
            f.event(uow.conn, ws, num, "bought", at=time.time() + i)
        uow.commit()
    with _user_reads(container) as reads:
        done = rt.reactions.scan_events()
    assert done == 3 and len(reads) == 1  # three reactions, their three users read in one statement
    for _ in range(3):
        rt.worker.round()
    assert sorted(m.to for m in email.sent) == ["u0@example.com", "u1@example.com", "u2@example.com"]


def test_a_full_read_keeps_the_worker_going(container: Container) -> None:
    ws, nums = _setup(container, n=1)
    rt = messaging_runtime(container, email=MemoryEmailTransport(), webhook=MemoryWebhookTransport())
    _launch(container, ws, campaign(delivery={"type": "action", "event": "bought"}))
    rt.reactions.scan_events()
    with container.uow() as uow:
        for i in range(260):
            f.event(uow.conn, ws, nums[0], f"viewed-{i}", at=time.time())
        uow.commit()
    limit = 250  # above the ids PostgreSQL's scanner reads again (200)
    assert rt.reactions.scan_events(limit=limit) == 1  # 250 read of 260: more are waiting
    assert rt.reactions.scan_events(limit=limit) == 0  # the last ten (and, on PostgreSQL, 200 seen ones)


def test_an_idle_round_only_reads(container: Container) -> None:
    """With nothing due and no new event, a round takes no write lock (SQLite has one writer)."""
    ws, nums = _setup(container, n=1)
    rt = messaging_runtime(container, email=MemoryEmailTransport(), webhook=MemoryWebhookTransport())
    _launch(container, ws, campaign(delivery={"type": "action", "event": "bought"}))
    rt.worker.round()  # the scanners' first round stores where they start
    writes: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        text = " ".join(statement.split()).upper()
        if text.startswith(("BEGIN IMMEDIATE", "INSERT", "UPDATE", "DELETE")) or "FOR UPDATE" in text:
            writes.append(text[:80])

    sa_event.listen(container.engine, "before_cursor_execute", record)
    try:
        assert rt.worker.round() == 0
        assert writes == []
        with container.uow() as uow:  # an event the campaign reacts to: the next round writes
            f.event(uow.conn, ws, nums[0], "bought", at=time.time())
            uow.commit()
        writes.clear()
        assert rt.worker.round() >= 1
        assert writes != []
    finally:
        sa_event.remove(container.engine, "before_cursor_execute", record)


def test_with_no_program_watching_events_the_cursor_moves_without_reading_them(container: Container) -> None:
    ws, nums = _setup(container, n=2)
    email = MemoryEmailTransport()
    rt = messaging_runtime(container, email=email, webhook=MemoryWebhookTransport())
    rt.reactions.scan_events()
    with container.uow() as uow:
        for _ in range(30):
            f.event(uow.conn, ws, nums[0], "bought", at=time.time())
        uow.commit()
    reads: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        text = " ".join(statement.split()).lower()
        if text.startswith("select") and "custom_events.properties" in text:
            reads.append(text)

    sa_event.listen(container.engine, "before_cursor_execute", record)
    try:
        assert rt.reactions.scan_events() == 0
        assert reads == []  # no program watches custom events: not one row read
    finally:
        sa_event.remove(container.engine, "before_cursor_execute", record)
    # a campaign launched now reacts to what comes after, not to the 30 events before it
    _launch(container, ws, campaign(delivery={"type": "action", "event": "bought"}))
    with container.uow() as uow:
        f.event(uow.conn, ws, nums[1], "bought", at=time.time())
        uow.commit()
    assert rt.reactions.scan_events() == 1
    for _ in range(3):
        rt.worker.round()
    assert [m.to for m in email.sent] == ["u1@example.com"]
