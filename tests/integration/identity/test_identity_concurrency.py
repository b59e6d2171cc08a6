"""Identity writes on PostgreSQL: plans that follow a growing table, and locks per identifier and user."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text

from cohorthub.bootstrap import Container, bootstrap
from cohorthub.config import Settings
from cohorthub.errors import ResourceLocked
from cohorthub.identity import services
from cohorthub.identity.model import UserAlias
from cohorthub.identity.workset import Lookup
from cohorthub.store import statistics
from cohorthub.workspaces import services as workspaces

NOW = 1_800_000_000.0


@pytest.fixture
def pg(database_url: str) -> Iterator[Container]:
    """A container on PostgreSQL whose lock waits give up after 0.3 s."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row and advisory locks and plan caching are PostgreSQL's")
    c = bootstrap(Settings(database_url=database_url, lock_timeout_seconds=0.3), run_migrations=False)
    yield c
    c.close()


@pytest.fixture
def ws(pg: Container) -> str:
    with pg.uow() as uow:
        workspace, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    return workspace.id


def track(c: Container, ws: str, body: dict[str, Any]) -> services.TrackResult:
    with c.uow() as uow:
        return services.track_users(uow=uow, workspace_id=ws, body=body, now=NOW)


def test_the_lookup_plan_follows_a_table_grown_from_empty(pg: Container, ws: str) -> None:
    # Many small requests while the table is tiny: the driver prepares the lookup statement.
    for r in range(25):
        track(pg, ws, {"attributes": [{"external_id": f"early-{r}-{i}", "n": i} for i in range(3)]})
    with pg.engine.begin() as conn:  # then the table grows, with no ANALYZE
        conn.execute(
            text(
                "INSERT INTO users (workspace_id, braze_id, external_id, custom_attributes, created_at,"
                " updated_at) SELECT :ws, lpad(to_hex(g), 24, '0'), 'bulk-' || g, '{}', 0, 0"
                " FROM generate_series(1, 200000) AS g"
            ),
            {"ws": ws},
        )
    with pg.engine.connect() as conn:  # the pool's one connection: the one that prepared it
        name = conn.execute(
            text(
                "SELECT name FROM pg_prepared_statements WHERE statement LIKE '%FROM users WHERE num = "
                "ANY(ARRAY(SELECT num FROM users WHERE workspace_id = $1 AND external_id = ANY($2)))%'"
            )
        ).scalar_one()
        plan = "\n".join(conn.execute(text(f"EXPLAIN EXECUTE {name}('{ws}', ARRAY['bulk-7'])")).scalars())
    # Not a scan of the workspace's rows (a generic plan picked while the table was tiny).
    assert "uq_users_workspace_external_id" in plan, plan
    result = track(pg, ws, {"attributes": [{"external_id": "bulk-7", "n": 1}]})
    assert result.attributes_processed == 1 and not result.errors


def _statement_blocks(c: Container, statements: list[tuple[str, Any]]) -> list[tuple[int, str]]:
    """Each statement's buffer reads (EXPLAIN ANALYZE), with the statement."""
    out = []
    with c.engine.connect() as conn:
        for sql, params in statements:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0][0]["Plan"]
            out.append((plan["Shared Hit Blocks"] + plan["Shared Read Blocks"], sql))
        conn.rollback()
    return out


def test_a_device_lookup_reads_a_few_pages_of_tables_grown_from_empty(pg: Container, ws: str) -> None:
    # Devices, aliases and users written with no ANALYZE since the tables were empty (autovacuum
    # off or late): the lookup must not depend on statistics to find a few users among thousands.
    with pg.engine.begin() as conn:
        for table in ("users", "user_devices", "user_aliases"):
            conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = off)"))
    try:
        for start in range(0, 3000, 75):
            body = {
                "attributes": [
                    {"device_id": f"dev-{i}", "n": i} if i % 2 else {"external_id": f"ext-{i}", "n": i}
                    for i in range(start, start + 75)
                ]
            }
            track(pg, ws, body)
        assert statistics.settle(pg.engine)  # the ANALYZE those writes asked for, off their requests
        lookup = Lookup(
            external_ids={"ext-1000"},
            device_ids={"dev-2001", "dev-7"},
            aliases={UserAlias("crm", "none")},
            emails={"x@example.com"},
        )
        seen: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
            if sql.startswith("SELECT") and "advisory" not in sql:
                seen.append((sql, params))

        event.listen(pg.engine, "before_cursor_execute", record)
        try:
            with pg.uow() as uow:
                loaded = uow.users.load(ws, lookup, lock=True)
        finally:
            event.remove(pg.engine, "before_cursor_execute", record)
        assert sorted(p.custom["n"] for p in loaded.profiles) == [7, 1000, 2001]
        assert set(loaded.devices) == {"dev-7", "dev-2001"}
        for blocks, sql in _statement_blocks(pg, seen):
            assert blocks < 60, (blocks, sql)  # a scan of the workspace reads thousands
    finally:
        with pg.engine.begin() as conn:
            for table in ("users", "user_devices", "user_aliases"):
                conn.execute(text(f"ALTER TABLE {table} RESET (autovacuum_enabled)"))


def track_many(c: Container, ws: str, prefix: str, count: int, *, commit: bool = True) -> None:
    """`count` new users in one transaction (requests of 75)."""
    with c.uow() as uow:
        for start in range(0, count, 75):
            body = {
                "attributes": [{"external_id": f"{prefix}-{i}"} for i in range(start, min(count, start + 75))]
            }
            batch = services.parse_track(body, now=NOW)
            result, _ = services.apply_track(uow=uow, workspace_id=ws, batch=batch, now=NOW)
            assert not result.errors
        if commit:
            uow.commit()


def _analyze_count(c: Container) -> int:
    with c.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'users'")
            ).scalar_one()
        )


def test_analyze_runs_after_the_growing_request_commits_and_off_its_thread(pg: Container, ws: str) -> None:
    statements: list[tuple[int, str]] = []

    def record(_conn: Any, _cursor: Any, sql: str, _params: Any, _ctx: Any, _many: bool) -> None:
        statements.append((threading.get_ident(), sql))

    before = statistics.runs(pg.engine)
    blocker = pg.engine.connect()  # holds the lock ANALYZE needs: it must not hold up the request
    blocker.execute(text("LOCK TABLE users IN SHARE UPDATE EXCLUSIVE MODE"))
    event.listen(pg.engine, "before_cursor_execute", record)
    try:
        track_many(pg, ws, "grow", statistics.MIN_GROWTH)  # crosses the growth threshold
        assert not [sql for ident, sql in statements if "ANALYZE" in sql and ident == threading.get_ident()]
        blocker.rollback()  # the lock is gone: the background run goes on (or had given up on it)
        assert statistics.settle(pg.engine)
        if statistics.runs(pg.engine) > before and _analyze_count(pg) == 0:
            pytest.fail("a run finished without analyzing")  # only a lock timeout may skip it
        analyzed = [ident for ident, sql in statements if sql.startswith("ANALYZE")]
        assert analyzed and threading.get_ident() not in analyzed
    finally:
        event.remove(pg.engine, "before_cursor_execute", record)
        blocker.close()
    # Growing again (doubling) asks for another run, which now finds the lock free and analyzes.
    count = _analyze_count(pg)
    track_many(pg, ws, "more", 2 * statistics.MIN_GROWTH)
    assert statistics.settle(pg.engine)
    assert _analyze_count(pg) > count


def test_a_request_that_rolls_back_asks_for_no_analyze(pg: Container, ws: str) -> None:
    before = statistics.runs(pg.engine)
    track_many(pg, ws, "gone", statistics.MIN_GROWTH, commit=False)
    track(pg, ws, {"attributes": [{"external_id": "one", "n": 1}]})
    assert statistics.settle(pg.engine)
    assert statistics.runs(pg.engine) == before


def test_writers_of_different_users_do_not_wait_for_each_other(pg: Container, ws: str) -> None:
    track(pg, ws, {"attributes": [{"external_id": "a", "n": 1}, {"external_id": "b", "n": 1}]})
    with pg.uow() as holder:  # a writer of user "a" and of the new user "c", not committed yet
        holder.users.load(ws, Lookup(external_ids={"a", "c"}), lock=True)
        other = track(pg, ws, {"attributes": [{"external_id": "b", "n": 2}, {"external_id": "d", "n": 2}]})
        assert other.attributes_processed == 2
        with pytest.raises(ResourceLocked):
            track(pg, ws, {"attributes": [{"external_id": "a", "n": 3}]})
        with pytest.raises(ResourceLocked):  # creating "c" waits for the holder, who may create it
            track(pg, ws, {"attributes": [{"external_id": "c", "n": 3}]})


def test_a_user_named_by_another_identifier_waits_for_its_writer(pg: Container, ws: str) -> None:
    track(pg, ws, {"attributes": [{"external_id": "a", "n": 1}]})
    with pg.uow() as uow:
        services.add_aliases(
            uow=uow,
            workspace_id=ws,
            body={"user_aliases": [{"external_id": "a", "alias_label": "crm", "alias_name": "A1"}]},
            now=NOW,
        )
    with pg.uow() as holder:
        holder.users.load(ws, Lookup(external_ids={"a"}), lock=True)
        with pytest.raises(ResourceLocked):  # the same user through its alias: its row is locked
            track(
                pg, ws, {"attributes": [{"user_alias": {"alias_label": "crm", "alias_name": "A1"}, "m": 1}]}
            )
        holder.rollback()
    both = track(pg, ws, {"attributes": [{"user_alias": {"alias_label": "crm", "alias_name": "A1"}, "m": 1}]})
    assert both.attributes_processed == 1
    with pg.uow(readonly=True) as uow:
        loaded = uow.users.load(ws, Lookup(aliases={UserAlias("crm", "A1")}))
    assert [p.custom for p in loaded.profiles] == [{"n": 1, "m": 1}]
