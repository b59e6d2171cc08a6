"""The SQL unit of work: one transaction per use case, repositories bound to it.

On SQLite, writers in one process queue on an in-process lock (bounded by the lock
timeout, then `ResourceLocked`) and open the transaction with `BEGIN IMMEDIATE`; readers
use `BEGIN DEFERRED` and never wait for writers (WAL). On PostgreSQL every unit runs at
READ COMMITTED; cohort writers serialize on the cohort row (`SELECT … FOR UPDATE`).
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine

from cohorthub.errors import ResourceLocked
from cohorthub.store.accounts import SqlAccountRepository
from cohorthub.store.cohorts import SqlCohortRepository
from cohorthub.store.currents import SqlCurrentsRepository
from cohorthub.store.identity import SqlUserRepository
from cohorthub.store.messaging import SqlMessagingStore
from cohorthub.store.outbox import SqlOutbox
from cohorthub.store.partners import SqlPartnerRepository
from cohorthub.store.segments import SqlSegmentRepository
from cohorthub.store.workspaces import SqlWorkspaceRepository

_sqlite_write_locks: dict[int, threading.Lock] = {}
_registry_lock = threading.Lock()


def _write_lock(engine: Engine) -> threading.Lock:
    with _registry_lock:
        return _sqlite_write_locks.setdefault(id(engine), threading.Lock())


class SqlUnitOfWork:
    """`with SqlUnitOfWork(engine) as uow: ...; uow.commit()`; leaving without commit rolls back."""

    workspaces: SqlWorkspaceRepository
    partners: SqlPartnerRepository
    users: SqlUserRepository
    cohorts: SqlCohortRepository
    outbox: SqlOutbox
    segments: SqlSegmentRepository
    currents: SqlCurrentsRepository
    accounts: SqlAccountRepository
    messaging: SqlMessagingStore
    conn: Connection

    def __init__(self, engine: Engine, *, readonly: bool = False, lock_timeout: float = 5.0) -> None:
        self._engine = engine
        self._readonly = readonly
        self._lock_timeout = lock_timeout
        self._lock: threading.Lock | None = None
        self.dialect = engine.dialect.name

    def __enter__(self) -> Self:
        if self.dialect == "sqlite" and not self._readonly:
            lock = _write_lock(self._engine)
            if not lock.acquire(timeout=self._lock_timeout):
                raise ResourceLocked()
            self._lock = lock
        try:
            mode = "DEFERRED" if self._readonly else "IMMEDIATE"
            self.conn = self._engine.connect().execution_options(sqlite_begin=mode)
            self.conn.begin()
        except BaseException:  # ResourceLocked from the engine when BEGIN waited too long
            self._release()
            raise
        self.workspaces = SqlWorkspaceRepository(self.conn)
        self.partners = SqlPartnerRepository(self.conn)
        self.users = SqlUserRepository(self.conn)
        self.cohorts = SqlCohortRepository(self.conn)
        self.outbox = SqlOutbox(self.conn)
        self.segments = SqlSegmentRepository(self.conn)
        self.currents = SqlCurrentsRepository(self.conn)
        self.accounts = SqlAccountRepository(self.conn)
        self.messaging = SqlMessagingStore(self.conn)
        return self

    def commit(self) -> None:
        """Make every change of this unit durable."""
        self.conn.commit()

    def rollback(self) -> None:
        """Discard every change of this unit."""
        self.conn.rollback()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.conn.in_transaction():
                self.conn.rollback()
            self.conn.close()
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class UnitOfWorkFactory:
    """Makes units of work for one engine; the composition root holds one."""

    def __init__(self, engine: Engine, *, lock_timeout: float = 5.0) -> None:
        self.engine = engine
        self.lock_timeout = lock_timeout

    def __call__(self, *, readonly: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, readonly=readonly, lock_timeout=self.lock_timeout)
