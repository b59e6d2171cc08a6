"""A transaction PostgreSQL rolls back to break a deadlock is reported as such, and a write runs again."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anyio
import pytest
from sqlalchemy import Engine, text

from cohorthub.api.http import DEADLOCK_ATTEMPTS, write_in_thread
from cohorthub.errors import DeadlockVictim
from cohorthub.store.db import create_db_engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    if not database_url.startswith("postgresql"):
        pytest.skip("deadlock detection is PostgreSQL's")
    engine = create_db_engine(database_url, lock_timeout_seconds=10)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS dl; CREATE TABLE dl (k int PRIMARY KEY, v int)"))
        conn.execute(text("INSERT INTO dl VALUES (1, 0), (2, 0)"))
    yield engine
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE dl"))
    engine.dispose()


def test_a_deadlock_victim_is_told_apart_from_a_lock_timeout(engine: Engine) -> None:
    both = threading.Barrier(2)
    outcomes: list[str] = []

    def writer(first: int, second: int) -> None:
        with engine.connect() as conn:
            try:
                conn.execute(text("UPDATE dl SET v = v + 1 WHERE k = :k"), {"k": first})
                both.wait(5)
                conn.execute(text("UPDATE dl SET v = v + 1 WHERE k = :k"), {"k": second})
                conn.commit()
                outcomes.append("committed")
            except DeadlockVictim:
                outcomes.append("victim")

    threads = [threading.Thread(target=writer, args=a) for a in ((1, 2), (2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["committed", "victim"]


def test_a_write_runs_again_after_being_a_deadlock_victim() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < DEADLOCK_ATTEMPTS:
            raise DeadlockVictim()
        return "done"

    assert anyio.run(write_in_thread, flaky) == "done"
    assert len(calls) == DEADLOCK_ATTEMPTS

    calls.clear()

    def always() -> str:
        calls.append(1)
        raise DeadlockVictim()

    with pytest.raises(DeadlockVictim):
        anyio.run(write_in_thread, always)
    assert len(calls) == DEADLOCK_ATTEMPTS
