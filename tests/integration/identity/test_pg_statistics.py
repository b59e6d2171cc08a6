"""PostgreSQL: a process analyzes the identity tables as they grow, about once per doubling."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from cohorthub.bootstrap import Container
from cohorthub.identity import services
from cohorthub.store import statistics
from cohorthub.workspaces import services as workspaces

NOW = 1_800_000_000.0


def test_the_tables_are_analyzed_once_per_doubling(container: Container) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's")
    with container.uow() as uow:
        ws, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    analyzed: list[int] = []
    inserted = 0

    def record(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if sql.startswith("ANALYZE"):
            analyzed.append(inserted)

    event.listen(container.engine, "before_cursor_execute", record)
    try:
        for start in range(0, 6_000, 75):
            body = {"attributes": [{"external_id": f"u-{i}", "n": i} for i in range(start, start + 75)]}
            with container.uow() as uow:
                services.track_users(uow=uow, workspace_id=ws.id, body=body, now=NOW)
            inserted = start + 75
            assert statistics.settle(container.engine)  # the run it asked for, off the request
    finally:
        event.remove(container.engine, "before_cursor_execute", record)
    # Each ANALYZE once the users inserted since the last one reach the size it saw (or the minimum).
    assert analyzed, "the tables grew from empty and were never analyzed"
    assert analyzed[0] <= statistics.MIN_GROWTH + 75
    assert len(analyzed) <= 5, analyzed  # 500, ~1,000, ~2,000, ~4,000 (a fifth each time: ~11)
