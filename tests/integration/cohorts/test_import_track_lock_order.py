"""PostgreSQL: a cohort import and writers of the same users take their row locks in one order.

An import share-locks the users it matches; `/users/track` and `/users/delete` lock the users they
load, then write them. Were the import to lock in identifier order while the others lock (or
upgrade their locks) in another, two such transactions on overlapping users would each wait for
the other: PostgreSQL would roll one back after `deadlock_timeout` (1 s) and the request would run
again. The users below get external ids that sort opposite to their numbers, the order in which
identifier order and number order disagree the most.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from cohorthub.bootstrap import Container, bootstrap
from cohorthub.cohorts import services as cohorts
from cohorthub.config import Settings
from cohorthub.errors import DeadlockVictim, ResourceLocked
from cohorthub.identity import services as identity
from tests.integration.cohorts.factories import NOW, Tenant, add_users, make_tenant

USERS = 75  # a track request's most
ROUNDS = 40


@pytest.fixture
def pg(container: Container) -> Container:
    """The container, on PostgreSQL (its lock waits last 5 s, past the 1 s deadlock detection)."""
    if container.engine.dialect.name != "postgresql":
        pytest.skip("row locks and deadlock detection are PostgreSQL's")
    return container


@pytest.fixture
def impatient(pg: Container) -> Iterator[Container]:
    """A second container on the same database whose lock waits give up after 0.5 s."""
    c = bootstrap(
        Settings(database_url=pg.settings.database_url, lock_timeout_seconds=0.5), run_migrations=False
    )
    yield c
    c.close()


@pytest.fixture
def tenant(pg: Container) -> Tenant:
    tenant = make_tenant(pg)
    # Numbers ascend while external ids descend: "u074" has the lowest number.
    add_users(pg, tenant.workspace_id, [f"u{USERS - 1 - i:03d}" for i in range(USERS)])
    return tenant


def _deadlocks(c: Container) -> int:
    with c.engine.connect() as conn:
        sql = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        return int(conn.execute(text(sql)).scalar_one())


def _import(c: Container, t: Tenant, round_: int) -> None:
    changes = [{"user_ids": [f"u{i:03d}" for i in range(USERS)]}]
    if round_ % 2:
        changes = [{"user_ids": [f"u{i:03d}" for i in range(USERS)], "remove": True}]
    with c.uow() as uow:
        cohorts.import_cohort_changes(
            uow=uow, cache=c.membership, partner="heap",
            body=t.body(cohort_id="c1", cohort_changes=changes),
            quota=10**9, identifier_max_length=512, compaction_threshold=c.settings.compaction_threshold,
            request_id=str(uuid.uuid4()), now=NOW,
        )  # fmt: skip


def _track(c: Container, t: Tenant, round_: int) -> None:
    attributes = [{"external_id": f"u{i:03d}", "round": round_} for i in range(USERS)]
    with c.uow() as uow:
        identity.track_users(uow=uow, workspace_id=t.workspace_id, body={"attributes": attributes}, now=NOW)


def _delete(c: Container, t: Tenant, external_ids: list[str]) -> None:
    with c.uow() as uow:
        identity.delete_users(
            uow=uow, workspace_id=t.workspace_id, body={"external_ids": external_ids}, now=NOW
        )


def _race(c: Container, t: Tenant, writers: list[Callable[[Container, Tenant, int], None]]) -> list[str]:
    """Run the writers together, ROUNDS times; what each run came to."""
    outcomes: list[str] = []
    for round_ in range(ROUNDS):
        start = threading.Barrier(len(writers))

        def run(write: Callable[[Container, Tenant, int], None], r: int = round_, start: Any = start) -> None:
            start.wait(10)
            try:
                write(c, t, r)
                outcomes.append("done")
            except DeadlockVictim:
                outcomes.append("deadlock victim")
            except Exception as exc:  # reported by the assertion
                outcomes.append(repr(exc))

        threads = [threading.Thread(target=run, args=(w,)) for w in writers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    return outcomes


def test_an_import_and_a_track_of_the_same_users_never_deadlock(pg: Container, tenant: Tenant) -> None:
    before = _deadlocks(pg)
    outcomes = _race(pg, tenant, [_import, _track, _import, _track])
    assert outcomes.count("deadlock victim") == 0, outcomes
    assert _deadlocks(pg) - before == 0
    assert outcomes == ["done"] * 4 * ROUNDS


def _share_lock(c: Container, t: Tenant, external_id: str) -> Any:
    """A transaction holding `FOR KEY SHARE` on the user, as an import holds its matched users."""
    conn = c.engine.connect()
    sql = "SELECT num FROM users WHERE workspace_id = :ws AND external_id = :x FOR KEY SHARE"
    assert conn.execute(text(sql), {"ws": t.workspace_id, "x": external_id}).scalar_one()
    return conn


def test_a_track_updating_attributes_does_not_wait_for_an_imports_share_lock(
    pg: Container, impatient: Container, tenant: Tenant
) -> None:
    # An UPDATE naming `external_id` locked every row FOR UPDATE (the row trigger), unchanged or not.
    importing = _share_lock(pg, tenant, "u000")
    try:
        _track(impatient, tenant, 1)
    finally:
        importing.rollback()
        importing.close()
    with pg.engine.connect() as conn:
        sql = "SELECT custom_attributes FROM users WHERE external_id = 'u000'"
        assert '"round":1' in conn.execute(text(sql)).scalar_one()


def test_a_delete_still_waits_for_an_imports_share_lock(
    pg: Container, impatient: Container, tenant: Tenant
) -> None:
    importing = _share_lock(pg, tenant, "u000")
    try:
        with pytest.raises(ResourceLocked):
            _delete(impatient, tenant, ["u000"])
    finally:
        importing.rollback()
        importing.close()


def _blocked_on_a_lock(c: Container) -> bool:
    with c.engine.connect() as conn:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        sql += "AND wait_event_type = 'Lock'"
        return int(conn.execute(text(sql)).scalar_one()) > 0


def _leave(c: Container, t: Tenant, how: str) -> None:
    """u000 goes: deleted, or (an anonymous profile with device d0) merged into u001 on its sign-in."""
    with c.uow() as uow:  # as the API runs them: the cohorts' listener moves or removes memberships
        if how == "delete":
            identity.delete_users(
                uow=uow, workspace_id=t.workspace_id, body={"external_ids": ["u000"]},
                listeners=c.identity_listeners, now=NOW,
            )  # fmt: skip
        else:
            identity.track_users(
                uow=uow, workspace_id=t.workspace_id,
                body={"attributes": [{"external_id": "u001", "device_id": "d0"}]},
                listeners=c.identity_listeners, now=NOW,
            )  # fmt: skip


@pytest.mark.parametrize("how", ["delete", "merge"])
def test_a_user_leaving_takes_its_cohorts_before_its_row_as_an_import_does(
    pg: Container, tenant: Tenant, how: str
) -> None:
    # An import holds its cohort's lock, then share-locks the users it matched. A delete or a merge
    # that locked the user's row first (FOR UPDATE), then the cohort, deadlocked with it.
    _import(pg, tenant, 0)  # every user in c1
    ws = {"ws": tenant.workspace_id}
    if how == "merge":  # u000 becomes an anonymous profile with a device, still in c1
        with pg.engine.begin() as conn:
            sql = "UPDATE users SET external_id = NULL WHERE workspace_id = :ws AND external_id = 'u000'"
            num = conn.execute(text(sql + " RETURNING num"), ws).scalar_one()
            sql = "INSERT INTO user_devices (workspace_id, device_id, user_num) VALUES (:ws, 'd0', :n)"
            conn.execute(text(sql), {**ws, "n": num})
    else:
        with pg.engine.connect() as conn:
            sql = "SELECT num FROM users WHERE workspace_id = :ws AND external_id = 'u000'"
            num = conn.execute(text(sql), ws).scalar_one()
    importing = pg.engine.connect()
    sql = "SELECT pk FROM cohorts WHERE workspace_id = :ws AND cohort_id = 'c1' FOR UPDATE"
    importing.execute(text(sql), ws)
    outcome: list[str] = []

    def leave() -> None:
        try:
            _leave(pg, tenant, how)
            outcome.append("done")
        except Exception as exc:  # reported by the assertion
            outcome.append(repr(exc))

    thread = threading.Thread(target=leave)
    thread.start()
    try:
        for _ in range(500):  # until the delete waits for a lock: the cohort's, held here
            if _blocked_on_a_lock(pg):
                break
            threading.Event().wait(0.01)
        importing.execute(text("SET LOCAL lock_timeout = '500ms'"))
        # the import's share lock on the user: the delete holds no lock on its row that conflicts yet
        sql = "SELECT num FROM users WHERE num = :n FOR KEY SHARE"
        assert importing.execute(text(sql), {"n": num}).scalar_one() == num
        importing.commit()
    finally:
        importing.close()
        thread.join(30)
    assert outcome == ["done"]
    with pg.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users WHERE num = :n"), {"n": num}).scalar_one() == 0
        sql = "SELECT size FROM cohorts WHERE workspace_id = :ws AND cohort_id = 'c1'"
        # deleted, it left the cohort; merged, its place went to u001, already there
        assert conn.execute(text(sql), ws).scalar_one() == USERS - 1
