"""Interactive reads before bulk writes, inside one server process.

A server process runs its requests on threads that share one interpreter lock and, on a small
machine, few CPUs. While ingest requests keep those threads busy, a short read (a segment's size:
about a millisecond of work) spends most of its time waiting for the lock between its steps. So a
read marks itself (`reading`) while it runs, and write work in other threads, before its next
statement (`yield_to_readers`, called before each statement), waits until no read is in flight.
A writer waits at most `MAX_PAUSE` at a time, and after a pause runs at least as long as it
waited before it pauses again: a stream of reads slows writers by at most half, never stops them.
A pausing writer keeps the locks its transaction holds; readers never need them (WAL on SQLite,
MVCC on PostgreSQL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: The longest a writer waits at one statement for reads in flight.
MAX_PAUSE = 0.02
#: The least a writer runs between two pauses.
MIN_RUN = 0.005


class ReadPriority:
    """Counts reads in flight; writers in other threads wait for them before their next statement."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._local = threading.local()
        self.waiting = 0  # writers waiting now
        self.pauses = 0  # waits that ended with the reads
        self.timeouts = 0  # waits cut short by `MAX_PAUSE`

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Mark a read in flight in this thread: its statements never pause, others' do."""
        self._local.reading = self._reads_here() + 1
        with self._cond:
            self._readers += 1
        try:
            yield
        finally:
            self._local.reading -= 1
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    def _reads_here(self) -> int:
        reads: int = getattr(self._local, "reading", 0)
        return reads

    def yield_to_readers(self) -> None:
        """Wait (at most `MAX_PAUSE`) while reads are in flight, unless this thread runs one."""
        if not self._readers or self._reads_here() > 0:
            return
        if threading.current_thread() is threading.main_thread():
            return  # an event loop's thread never blocks
        now = time.monotonic()
        if now < getattr(self._local, "free_until", 0.0):
            return
        with self._cond:
            self.waiting += 1
            released = self._cond.wait_for(lambda: not self._readers, MAX_PAUSE)
            self.waiting -= 1
            if released:
                self.pauses += 1
            else:
                self.timeouts += 1
        waited = time.monotonic() - now
        self._local.free_until = time.monotonic() + max(waited, MIN_RUN)


#: The process's one gate.
READS = ReadPriority()
