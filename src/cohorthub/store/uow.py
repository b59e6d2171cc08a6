"""The SQL unit of work: one transaction per use case, repositories bound to it.

On SQLite, writers in one process queue on an in-process lock (bounded by the lock
timeout, then `ResourceLocked`) and open the transaction with `BEGIN IMMEDIATE`; readers
use `BEGIN DEFERRED` and never wait for writers (WAL). A unit made with `group=True` shares
the writer's transaction with the requests queued with it, in a SAVEPOINT of its own, and its
`commit()` returns once the group's one COMMIT is on disk (`store/group_commit.py`).
On PostgreSQL every unit runs at READ COMMITTED; cohort writers serialize on the cohort row
(`SELECT … FOR UPDATE`), and `group` changes nothing. A read-only unit runs each statement on its
own (autocommit): at READ COMMITTED every statement has its own snapshot anyway, and BEGIN and the
closing ROLLBACK were two of a segment size read's four round trips.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine

from cohorthub.store import statistics
from cohorthub.store.accounts import SqlAccountRepository
from cohorthub.store.apps import SqlAppRepository
from cohorthub.store.cohorts import SqlCohortRepository
from cohorthub.store.currents import SqlCurrentsRepository
from cohorthub.store.group_commit import Savepoint, SqliteWriter, Ticket, sqlite_writer
from cohorthub.store.identity import SqlUserRepository
from cohorthub.store.messaging import SqlMessagingStore
from cohorthub.store.outbox import SqlOutbox
from cohorthub.store.partners import SqlPartnerRepository, SqlServerAddresses
from cohorthub.store.segments import SqlSegmentRepository
from cohorthub.store.workspaces import SqlWorkspaceRepository


class SqlUnitOfWork:
    """`with SqlUnitOfWork(engine) as uow: ...; uow.commit()`; leaving without commit rolls back."""

    workspaces: SqlWorkspaceRepository
    partners: SqlPartnerRepository
    server_addresses: SqlServerAddresses
    users: SqlUserRepository
    cohorts: SqlCohortRepository
    outbox: SqlOutbox
    segments: SqlSegmentRepository
    currents: SqlCurrentsRepository
    apps: SqlAppRepository
    messaging: SqlMessagingStore
    accounts: SqlAccountRepository
    conn: Connection

    def __init__(
        self, engine: Engine, *, readonly: bool = False, lock_timeout: float = 5.0, group: bool = False
    ) -> None:
        self._engine = engine
        self._readonly = readonly
        self._lock_timeout = lock_timeout
        self.dialect = engine.dialect.name
        self._writer: SqliteWriter | None = None
        self._grouped = group and self.dialect == "sqlite" and not readonly
        self._savepoint: Savepoint | None = None
        self._ticket: Ticket | None = None

    def __enter__(self) -> Self:
        if self.dialect == "sqlite" and not self._readonly:
            writer = sqlite_writer(self._engine)
            writer.acquire(self._lock_timeout)
            self._writer = writer
        try:
            self.conn = self._join() if self._grouped else self._begin()
        except BaseException:  # ResourceLocked from the engine when BEGIN waited too long
            self._leave()
            raise
        self.workspaces = SqlWorkspaceRepository(self.conn)
        self.partners = SqlPartnerRepository(self.conn)
        self.server_addresses = SqlServerAddresses(self.conn)
        self.users = SqlUserRepository(self.conn)
        self.cohorts = SqlCohortRepository(self.conn)
        self.outbox = SqlOutbox(self.conn)
        self.segments = SqlSegmentRepository(self.conn)
        self.currents = SqlCurrentsRepository(self.conn)
        self.apps = SqlAppRepository(self.conn)
        self.messaging = SqlMessagingStore(self.conn)
        self.accounts = SqlAccountRepository(self.conn)
        return self

    def _begin(self) -> Connection:
        if self._writer is not None:
            self._writer.flush()  # a group still open holds SQLite's write lock: commit it first
        if self._readonly and self.dialect == "postgresql":
            return self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        conn = self._engine.connect().execution_options(
            sqlite_begin="DEFERRED" if self._readonly else "IMMEDIATE"
        )
        try:
            conn.begin()
        except BaseException:
            conn.close()
            raise
        return conn

    def _join(self) -> Connection:
        assert self._writer is not None
        conn = self._writer.connection(self._engine)
        self._savepoint = Savepoint(conn)
        return conn

    def commit(self) -> None:
        """Make every change of this unit durable (in a group: return once the group's COMMIT is)."""
        if not self._grouped:
            self.conn.commit()
            statistics.after_commit(self.conn)
            return
        if self._savepoint is None or self._writer is None:  # the writer has moved on: no second turn
            raise RuntimeError("a grouped unit of work commits once, as its last step")
        self._savepoint.commit()
        self._savepoint, self._ticket = None, Ticket()
        self._writer.joined(self._ticket)
        self._leave()
        self._ticket.wait()

    def rollback(self) -> None:
        """Discard every change of this unit."""
        if not self._grouped:
            self.conn.rollback()
            statistics.after_rollback(self.conn)
            return
        if self._savepoint is None:
            raise RuntimeError("a grouped unit of work is over once it committed")
        self._savepoint.rollback()
        self._savepoint = Savepoint(self.conn)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._grouped:
            self._exit_group()
            return
        try:
            if self.conn.in_transaction():
                self.conn.rollback()
            statistics.after_rollback(self.conn)
            self.conn.close()
        except Exception:
            if exc is None:
                raise
            # The unit failed already (an error, Ctrl-C in the middle of a statement): a rollback
            # that fails as well must not hide why. Its connection is in no known state: dropped.
            self.conn.invalidate()
            self.conn.close()
        finally:
            self._leave()

    def _exit_group(self) -> None:
        """Undo this request's work (if it did not commit) and let the group go on without it."""
        if self._ticket is not None or self._writer is None:
            return  # committed: the writer was handed on in `commit`
        try:
            if self._savepoint is not None and self._savepoint.is_active:
                self._savepoint.rollback()
        except BaseException as exc:  # the transaction itself is gone: the group cannot commit
            self._writer.broke(exc)
        finally:
            self._savepoint = None
            self._leave()

    def _leave(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if self._grouped:
            writer.leave()
        else:
            writer.release()


class UnitOfWorkFactory:
    """Makes units of work for one engine; the composition root holds one."""

    def __init__(
        self, engine: Engine, *, lock_timeout: float = 5.0, on_failed_group: Callable[[], None] | None = None
    ) -> None:
        self.engine = engine
        self.lock_timeout = lock_timeout
        if on_failed_group is not None and engine.dialect.name == "sqlite":
            sqlite_writer(engine).on_failed_commit.append(on_failed_group)

    def __call__(self, *, readonly: bool = False, group: bool = False) -> SqlUnitOfWork:
        """A unit of work; `group=True` lets a SQLite write share its commit with concurrent ones."""
        return SqlUnitOfWork(self.engine, readonly=readonly, lock_timeout=self.lock_timeout, group=group)
