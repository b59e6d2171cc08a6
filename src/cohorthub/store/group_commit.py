"""Group commit for the SQLite writer: several write requests share one transaction and one fsync.

SQLite has one writer, and with `synchronous=FULL` each commit waits for an fsync of the WAL
(milliseconds), so concurrent write requests used to queue behind each other's fsync. Now a
request that opts in (`SqlUnitOfWork(..., group=True)`) runs its work inside a SAVEPOINT of the
writer's open transaction. When it is done and another request is already waiting for the writer,
it hands the writer over without committing; the last request of the run (nobody waiting, or
`MAX_GROUP` requests in the transaction) commits once and wakes every request of the group. So:

- a request's `commit()` returns only after the COMMIT holding its change is on disk, as before;
- a request that fails rolls back to its own savepoint: only its work is undone, it gets its own
  error, and the others of the group still commit;
- if the COMMIT itself fails, every request of the group gets that error (none is acknowledged);
- the writer is still one at a time (the in-process lock, bounded by the lock timeout, then 423),
  so locks, quota counting and ordering inside the transaction are exactly as before.

A writer that does not opt in commits any open group before it starts its own transaction.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from sqlalchemy import Connection, Engine

from cohorthub.errors import ResourceLocked

#: Requests at most in one transaction: bounds how long the first one waits for its commit.
MAX_GROUP = 32


class Ticket:
    """One request's place in a group: set once the group's COMMIT has succeeded or failed."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self.error: BaseException | None = None

    def settle(self, error: BaseException | None) -> None:
        """Record the group's outcome and wake the request."""
        self.error = error
        self._done.set()

    def wait(self) -> None:
        """Block until the group's outcome is known; raise the commit's error if it failed."""
        self._done.wait()
        if self.error is not None:
            raise self.error


class Savepoint:
    """A member's SAVEPOINT in the group's transaction, as plain statements.

    SQLAlchemy's nested-transaction bookkeeping cost more than the statements themselves. Members
    take their turns one after another and each ends its savepoint before the next begins, so one
    name serves them all.
    """

    NAME = "request"

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        conn.exec_driver_sql(f"SAVEPOINT {self.NAME}")
        self.is_active = True

    def commit(self) -> None:
        """Keep the member's changes in the group's transaction."""
        self._conn.exec_driver_sql(f"RELEASE SAVEPOINT {self.NAME}")
        self.is_active = False

    def rollback(self) -> None:
        """Undo the member's changes (the rest of the group's stay)."""
        self._conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {self.NAME}")
        self._conn.exec_driver_sql(f"RELEASE SAVEPOINT {self.NAME}")
        self.is_active = False


class SqliteWriter:
    """The single writer of one SQLite engine: its lock and the transaction its group shares."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held by the one request (or plain writer) writing now
        self._state = threading.Lock()
        self._waiting = 0
        self._conn: Connection | None = None
        self._members: list[Ticket] = []
        self._broken: BaseException | None = None
        #: Called when a group's COMMIT fails: in-memory state read inside its transaction is not durable.
        self.on_failed_commit: list[Callable[[], None]] = []
        self.commits = 0  # group COMMITs made, and the requests they acknowledged (for tests, metrics)
        self.acknowledged = 0

    def acquire(self, timeout: float) -> None:
        """Become the writer, or `ResourceLocked` after `timeout` seconds."""
        with self._state:
            self._waiting += 1
        got = False
        try:
            got = self._lock.acquire(timeout=timeout)
        finally:
            with self._state:  # atomic with a member's hand-off decision (`leave`)
                self._waiting -= 1
                orphaned = not got and self._lock.acquire(blocking=False)
            if orphaned:  # handed the writer just as we gave up: commit what the group left open
                try:
                    self.flush()
                finally:
                    self._lock.release()
        if not got:
            raise ResourceLocked()

    @property
    def waiting(self) -> int:
        """Requests queued for the writer now."""
        with self._state:
            return self._waiting

    def release(self) -> None:
        """Stop being the writer (a plain writer, after its own transaction)."""
        self._lock.release()

    def connection(self, engine: Engine) -> Connection:
        """The group's connection, in its open transaction (opened by the first member)."""
        if self._conn is None:
            conn = engine.connect().execution_options(sqlite_begin="IMMEDIATE")
            try:
                conn.begin()
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def joined(self, ticket: Ticket) -> None:
        """A member's savepoint is released: its change commits with the group."""
        self._members.append(ticket)

    def broke(self, error: BaseException) -> None:
        """The transaction is unusable (a savepoint could not be rolled back): the group fails."""
        self._broken = error

    def leave(self) -> None:
        """A member is done: hand the writer to a waiting request, or commit the group and release."""
        with self._state:  # a waiter that gives up at this moment settles the group (`acquire`)
            if self._waiting and self._broken is None and len(self._members) < MAX_GROUP:
                self._lock.release()
                return
        try:
            self.flush()
        finally:
            self._lock.release()

    def flush(self) -> None:
        """Commit the open group, if any, and settle its members (the caller holds the writer)."""
        conn, members, error = self._conn, self._members, self._broken
        if conn is None:
            return
        self._conn, self._members, self._broken = None, [], None
        try:
            if error is None:
                conn.commit()
                self.commits += 1
                self.acknowledged += len(members)
        except BaseException as exc:
            error = exc
        finally:
            try:
                conn.close()  # rolls back what a failed group left open
            finally:
                if error is not None:
                    for callback in self.on_failed_commit:
                        callback()
                for ticket in members:
                    ticket.settle(error)


_writers: weakref.WeakKeyDictionary[Engine, SqliteWriter] = weakref.WeakKeyDictionary()
_registry = threading.Lock()


def sqlite_writer(engine: Engine) -> SqliteWriter:
    """The writer of an engine (one per engine in the process)."""
    with _registry:
        writer = _writers.get(engine)
        if writer is None:
            writer = _writers[engine] = SqliteWriter()
        return writer
