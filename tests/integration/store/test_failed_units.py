"""A unit of work that failed in the middle of a statement raises its own error, not its rollback's."""

from __future__ import annotations

import pytest

from cohorthub.bootstrap import Container


class Interrupted(Exception):
    """Stands for what cut the unit short (a Ctrl-C lands as a KeyboardInterrupt)."""


def test_a_unit_cut_short_mid_statement_raises_why_and_drops_its_connection(container: Container) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("a statement left half-sent is a PostgreSQL connection's state")

    def cut_short() -> None:
        with container.uow() as uow:
            raw = uow.conn.connection.driver_connection
            assert raw is not None
            # A query sent and its result never read: the state a Ctrl-C inside the driver's wait can
            # leave (the rollback then fails: "another command is already in progress").
            raw.pgconn.send_query(b"SELECT 1")
            raise Interrupted

    with pytest.raises(Interrupted):
        cut_short()
    for _ in range(container.engine.pool.size() + 1):  # the broken connection is not handed out again
        with container.uow() as uow:
            assert uow.conn.exec_driver_sql("SELECT 1").scalar_one() == 1
