"""SQL repository for cohorts, membership chunks and history (owned by the cohort work)."""

from __future__ import annotations

from sqlalchemy import Connection


class SqlCohortRepository:
    """Cohorts and their membership in SQL."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
