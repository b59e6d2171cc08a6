"""Interactive reads before bulk writes: a writer's statements wait while a read is in flight."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from cohorthub.store import priority
from cohorthub.store.db import create_db_engine
from cohorthub.store.priority import ReadPriority


def _in_thread(fn: object) -> threading.Thread:
    thread = threading.Thread(target=fn)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_a_writer_statement_waits_for_the_read_in_flight(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'p.sqlite'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        order: list[str] = []
        started, leave = threading.Event(), threading.Event()

        def reader() -> None:
            with priority.READS.reading():
                with engine.connect() as conn:  # the read's own statements never wait
                    conn.execute(text("SELECT count(*) FROM t")).scalar_one()
                started.set()
                leave.wait(5)
                order.append("read done")

        def writer() -> None:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (1)"))
            order.append("written")

        before, timeouts = priority.READS.pauses, priority.READS.timeouts
        r = _in_thread(reader)
        assert started.wait(5)
        w = _in_thread(writer)
        deadline = time.monotonic() + 5
        while not priority.READS.waiting and time.monotonic() < deadline:
            time.sleep(0.0005)  # until the writer's statement waits for this read
        leave.set()
        r.join(5)
        w.join(5)
        # Had the wait run out first (a very slow machine), it counts as a timeout instead.
        assert order == ["read done", "written"] or priority.READS.timeouts > timeouts
        assert priority.READS.pauses + priority.READS.timeouts > before + timeouts
    finally:
        engine.dispose()


def test_a_pause_is_bounded_and_a_writer_then_runs_before_pausing_again() -> None:
    gate = ReadPriority()
    held, leave = threading.Event(), threading.Event()

    def reader() -> None:
        with gate.reading():
            held.set()
            leave.wait(30)

    r = _in_thread(reader)
    assert held.wait(5)

    def writer() -> None:
        gate.yield_to_readers()  # waits out the bound: the read is still in flight
        gate.yield_to_readers()  # then runs at least as long as it waited: no second wait

    w = _in_thread(writer)
    w.join(10)
    finished = not w.is_alive()
    leave.set()
    r.join(5)
    assert finished  # a read that never ends does not stop writers
    assert (gate.timeouts, gate.pauses) == (1, 0)


def test_the_reading_thread_and_threads_without_reads_in_flight_never_wait() -> None:
    gate = ReadPriority()
    with gate.reading():
        for _ in range(100):
            gate.yield_to_readers()  # the read's own thread
    w = _in_thread(lambda: [gate.yield_to_readers() for _ in range(100)])  # no read in flight
    w.join(5)
    assert (gate.timeouts, gate.pauses) == (0, 0)
