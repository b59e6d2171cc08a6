"""The composition root: settings → engine → schema → unit-of-work factory → app."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from cohorthub import clock
from cohorthub.apps.listeners import SessionIdentityListener
from cohorthub.cohorts.listeners import CohortMembershipListener
from cohorthub.cohorts.membership import MembershipCache
from cohorthub.cohorts.ports import CohortChangeListener
from cohorthub.config import Settings
from cohorthub.identity.bulk import Parsed
from cohorthub.identity.imports import ImportSummary, import_users
from cohorthub.identity.listeners import IdentityListener
from cohorthub.segments.indexes import SegmentIndexes
from cohorthub.segments.listeners import SegmentIdentityListener
from cohorthub.store import migrate, statistics
from cohorthub.store.db import open_db_engine
from cohorthub.store.notify import PgNotifier
from cohorthub.store.uow import UnitOfWorkFactory


@dataclass
class Container:
    """Everything a request handler, CLI command or worker needs, built once."""

    settings: Settings
    engine: Engine
    uow: UnitOfWorkFactory
    now: Callable[[], float] = clock.now
    membership: MembershipCache = field(default_factory=MembershipCache)
    identity_listeners: list[IdentityListener] = field(default_factory=list)
    cohort_listeners: list[CohortChangeListener] = field(default_factory=list)
    segments: SegmentIndexes = field(default_factory=SegmentIndexes)
    extras: dict[str, Any] = field(default_factory=dict)
    #: Rows per transaction of a bulk user import: PostgreSQL keeps each transaction's identifier
    #: locks (one per row) well inside its shared lock table.
    import_chunk_rows: int = 5_000

    def import_users(
        self,
        workspace_id: str,
        rows: Iterable[Parsed],
        *,
        progress: Callable[[ImportSummary], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> ImportSummary:
        """A bulk user import (`cohorthub users import`, `POST /users/import`) wired to this store:
        its units of work, identity listeners, clock and chunk size."""
        return import_users(
            new_uow=self.uow,
            workspace_id=workspace_id,
            rows=rows,
            listeners=self.identity_listeners,
            clock=self.now,
            chunk_rows=self.import_chunk_rows,
            progress=progress,
            stop=stop,
        )

    def close(self) -> None:
        """Release database connections (after a background `ANALYZE` under way has finished)."""
        statistics.settle(self.engine)
        self.engine.dispose()


def bootstrap(
    settings: Settings | None = None, *, run_migrations: bool = True, create_database: bool = True
) -> Container:
    """Wire the pieces for `settings` (default: from the environment).

    Without `create_database`, a SQLite file that does not exist is an error instead of a new database.
    """
    settings = settings or Settings.from_env()
    engine = open_db_engine(
        settings.database_url,
        lock_timeout_seconds=settings.lock_timeout_seconds,
        create=create_database,
    )
    if run_migrations:
        migrate.upgrade(engine)
    membership = MembershipCache()
    notify: list[CohortChangeListener] = [PgNotifier(engine)] if engine.dialect.name == "postgresql" else []
    return Container(
        settings=settings,
        engine=engine,
        uow=UnitOfWorkFactory(
            engine, lock_timeout=settings.lock_timeout_seconds, on_failed_group=membership.clear
        ),
        membership=membership,
        import_chunk_rows=1_000 if engine.dialect.name == "postgresql" else 5_000,
        identity_listeners=[
            CohortMembershipListener(membership, compaction_threshold=settings.compaction_threshold),
            SegmentIdentityListener(),
            SessionIdentityListener(),
        ],
        cohort_listeners=notify,
    )
