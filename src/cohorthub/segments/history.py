"""Size-history points written off the request path, by one background writer per process.

A size read must not queue for the database's single writer (SQLite) behind imports and
tracks: it hands its point to `HistoryWriter.submit` and answers. The writer thread stores
every point submitted so far in one transaction, then waits for more. `flush()` waits until
everything submitted before it is stored (history and changes reads call it, so a process
reads its own points).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One recorded size of a segment, and its membership (serialized) when a snapshot is due."""

    segment_pk: int
    at: float
    size: int
    snapshot: bytes | None


class HistoryWriter:
    """Queues points and stores them in batches on a daemon thread."""

    def __init__(self, store: Callable[[list[HistoryPoint]], None]) -> None:
        self._store = store
        self._cond = threading.Condition()
        self._pending: list[HistoryPoint] = []
        self._submitted = 0
        self._done = 0
        self._thread: threading.Thread | None = None

    def submit(self, point: HistoryPoint) -> None:
        """Queue a point; it is stored shortly after, whatever the writer's queue."""
        with self._cond:
            self._pending.append(point)
            self._submitted += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="segment-history", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every point submitted so far is stored (or given up on)."""
        with self._cond:
            target = self._submitted
            self._cond.wait_for(lambda: self._done >= target, timeout=timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending))
                batch, self._pending = self._pending, []
            try:
                self._store(batch)
            except Exception:  # a lost history point must not stop the next ones
                log.exception("could not record %d segment size point(s)", len(batch))
            with self._cond:
                self._done += len(batch)
                self._cond.notify_all()
