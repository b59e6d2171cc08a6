"""PostgreSQL: the references checked once per statement (migration 0016) still hold, and cohort
matching probes the identifier index whatever the statistics say."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import IntegrityError

from cohorthub.bootstrap import Container
from cohorthub.cohorts import services
from cohorthub.errors import ResourceLocked
from cohorthub.store import migrate
from cohorthub.store.db import create_db_engine
from tests.conftest import PG_ADMIN_URL
from tests.integration.cohorts.factories import NOW, Tenant, make_tenant


@pytest.fixture
def pg(container: Container) -> Container:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("the statement-level checks and the plans are PostgreSQL's")
    return container


@pytest.fixture
def tenant(pg: Container) -> Tenant:
    return make_tenant(pg)


def _import(c: Container, t: Tenant, ids: list[str], cohort: str = "c1") -> Any:
    with c.uow() as uow:
        return services.import_cohort_changes(
            uow=uow, cache=c.membership, partner="heap",
            body=t.body(cohort_id=cohort, cohort_changes=[{"user_ids": ids}]),
            quota=10**9, identifier_max_length=512, compaction_threshold=c.settings.compaction_threshold,
            request_id=str(uuid.uuid4()), now=NOW,
        )  # fmt: skip


def _add_users(engine: Engine, ws: str, count: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (workspace_id, braze_id, external_id, custom_attributes, created_at,"
                " updated_at) SELECT :ws, lpad(to_hex(g), 24, '0'), 'u-' || g, '{}', 0, 0"
                " FROM generate_series(1, :n) AS g"
            ),
            {"ws": ws, "n": count},
        )


def _cohort_pk(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pk FROM cohorts")).scalar_one())


def _fails(engine: Engine, sql: str, params: dict[str, Any]) -> str:
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        conn.execute(text(sql), params)
    assert "foreign key" in str(caught.value)
    return str(caught.value)


def test_a_change_log_row_needs_its_cohort_and_goes_with_it(pg: Container, tenant: Tenant) -> None:
    _add_users(pg.engine, tenant.workspace_id, 3)
    assert _import(pg, tenant, ["u-1", "u-2", "u-3", "nobody"]).entered == 3
    pk = _cohort_pk(pg.engine)
    log = "INSERT INTO cohort_changes (cohort_pk, version, user_num, entered, at, reason) "
    _fails(pg.engine, log + "VALUES (:pk, 9, 1, true, 0, 'import')", {"pk": pk + 1})
    _fails(pg.engine, log + "SELECT :pk, 9, g, true, 0, 'import' FROM generate_series(1, 3) g "
           "UNION ALL SELECT :pk + 1, 9, 4, true, 0, 'import'", {"pk": pk})  # fmt: skip
    _fails(pg.engine, "UPDATE cohort_changes SET cohort_pk = :pk + 1", {"pk": pk})
    _fails(pg.engine, "UPDATE cohorts SET pk = :pk + 1", {"pk": pk})
    with pg.engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM cohort_changes")).scalar_one() == 3
        conn.execute(text("DELETE FROM cohorts WHERE pk = :pk"), {"pk": pk})
        assert conn.execute(text("SELECT count(*) FROM cohort_changes")).scalar_one() == 0


def test_a_user_needs_its_workspace(pg: Container, tenant: Tenant) -> None:
    _add_users(pg.engine, tenant.workspace_id, 2)
    row = (
        "INSERT INTO users (workspace_id, braze_id, custom_attributes, created_at, updated_at) "
        "VALUES (:ws, :b, '{}', 0, 0)"
    )
    _fails(pg.engine, row, {"ws": "missing", "b": "f" * 24})
    _fails(pg.engine, "UPDATE users SET workspace_id = 'missing' WHERE external_id = 'u-1'", {})
    _fails(pg.engine, "DELETE FROM workspaces WHERE id = :ws", {"ws": tenant.workspace_id})
    with pg.engine.begin() as conn:  # an update that keeps the workspace, and a valid insert, pass
        conn.execute(text("UPDATE users SET email = 'a@example.com' WHERE external_id = 'u-1'"))
        conn.execute(text(row), {"ws": tenant.workspace_id, "b": "e" * 24})
        assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 3


def test_events_and_purchases_need_their_user_and_go_with_them(pg: Container, tenant: Tenant) -> None:
    _add_users(pg.engine, tenant.workspace_id, 2)
    with pg.engine.connect() as conn:
        one, two = conn.execute(text("SELECT num FROM users ORDER BY num")).scalars()
    event = "INSERT INTO custom_events (workspace_id, user_num, name, time, properties) "
    buy = (
        "INSERT INTO purchases (workspace_id, user_num, product_id, currency, price, quantity, time, "
        "properties) "
    )
    params = {"ws": tenant.workspace_id, "one": one, "two": two, "missing": two + 1}
    _fails(pg.engine, event + "VALUES (:ws, :missing, 'e', 0, '{}')", params)
    _fails(
        pg.engine, event + "SELECT :ws, n, 'e', 0, '{}' FROM unnest(ARRAY[:one, :two, :missing]) n", params
    )
    _fails(pg.engine, buy + "VALUES (:ws, :missing, 'p', 'EUR', 1, 1, 0, '{}')", params)
    with pg.engine.begin() as conn:
        conn.execute(
            text(event + "SELECT :ws, n, 'e', 0, '{}' FROM unnest(ARRAY[:one, :one, :two]) n"), params
        )
        conn.execute(text(buy + "VALUES (:ws, :two, 'p', 'EUR', 1, 1, 0, '{}')"), params)
    _fails(pg.engine, "UPDATE custom_events SET user_num = :missing WHERE user_num = :one", params)
    _fails(pg.engine, "UPDATE users SET num = :missing WHERE num = :two", params)
    with pg.engine.begin() as conn:
        conn.execute(text("UPDATE custom_events SET user_num = :two WHERE user_num = :one"), params)
        conn.execute(text("DELETE FROM users WHERE num = :two"), params)
        assert conn.execute(text("SELECT count(*) FROM custom_events")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM purchases")).scalar_one() == 0


def test_a_parent_stays_locked_until_its_new_rows_commit(pg: Container, tenant: Tenant) -> None:
    _add_users(pg.engine, tenant.workspace_id, 1)
    with pg.engine.connect() as conn:
        num = conn.execute(text("SELECT num FROM users")).scalar_one()
    with pg.engine.connect() as writer, pg.engine.connect() as deleter:
        writer.execute(
            text("INSERT INTO custom_events (workspace_id, user_num, name, time, properties) "
                 "VALUES (:ws, :n, 'e', 0, '{}')"),
            {"ws": tenant.workspace_id, "n": num},
        )  # fmt: skip
        deleter.execute(text("SET LOCAL lock_timeout = '200ms'"))
        with pytest.raises(ResourceLocked):  # the delete waits for the writer's share lock
            deleter.execute(text("DELETE FROM users WHERE num = :n"), {"n": num})
        deleter.rollback()
        writer.commit()


@pytest.mark.parametrize("analyzed_before", [False, True], ids=["never-analyzed", "workspace-unseen"])
def test_matching_reads_a_few_pages_of_a_table_never_analyzed(
    pg: Container, tenant: Tenant, analyzed_before: bool
) -> None:
    # Users loaded in bulk by another writer, no ANALYZE since (autovacuum off or late): the
    # match must not read the whole workspace to find a few of them. `workspace-unseen`: the
    # table was analyzed while it held only another workspace's users, so the statistics put
    # this workspace at a row or two, and every index starting with `workspace_id` looks alike.
    with pg.engine.begin() as conn:
        conn.execute(text("ALTER TABLE users SET (autovacuum_enabled = off)"))
        if analyzed_before:
            other = make_tenant(pg).workspace_id
            conn.execute(
                text(
                    "INSERT INTO users (workspace_id, braze_id, external_id, email, phone, custom_attributes,"
                    " created_at, updated_at) SELECT :ws, 'f' || lpad(to_hex(g), 23, '0'), 'o-' || g,"
                    " 'o' || g || '@example.com', '+3460000' || g, '{}', 0, 0 FROM generate_series(1, 3000) g"
                ),
                {"ws": other},
            )
    if analyzed_before:
        with pg.engine.begin() as conn:
            conn.execute(text("ANALYZE users"))
    try:
        _add_users(pg.engine, tenant.workspace_id, 20_000)
        seen: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
            if "FOR KEY SHARE" in sql:
                seen.append((sql, params))

        event.listen(pg.engine, "before_cursor_execute", record)
        try:
            result = _import(pg, tenant, [f"u-{i}" for i in range(100, 20_000, 2_000)] + ["nobody"])
        finally:
            event.remove(pg.engine, "before_cursor_execute", record)
        assert (result.matched, result.unmatched, result.entered) == (10, 1, 10)
        assert len(seen) == 1
        with pg.engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + seen[0][0], seen[0][1])
            plan = cursor.fetchone()[0][0]["Plan"]
            conn.rollback()
        blocks = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
        assert blocks < 100, blocks  # reading the workspace's users takes hundreds
    finally:
        with pg.engine.begin() as conn:
            conn.execute(text("ALTER TABLE users RESET (autovacuum_enabled)"))


def test_the_migration_goes_down_to_the_foreign_keys_and_back(pg: Container) -> None:
    name = f"cohorthub_keys_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_db_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    keys = "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conname = ANY(:names)"
    checks = "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'fk\\_%' AND NOT tgisinternal"
    names = {"names": [
        "fk_cohort_changes_cohort_pk_cohorts", "fk_users_workspace_id_workspaces",
        "fk_custom_events_user_num_users", "fk_purchases_user_num_users",
    ]}  # fmt: skip
    try:
        migrate.upgrade(engine)
        config = migrate.alembic_config(engine)
        for step in ("down", "up"):
            if step == "down":
                command.downgrade(config, "0015_ids_autoincrement")
            else:
                command.upgrade(config, "heads")
            with engine.connect() as conn:
                found = (conn.execute(text(keys), names).scalar(), conn.execute(text(checks)).scalar())
            assert found == ((4, 0) if step == "down" else (0, 16)), (step, found)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
