"""Membership on both stores: history, the cache across processes, compaction, merges, deletes, locking."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from cohorthub.bootstrap import Container, bootstrap
from cohorthub.cohorts import services
from cohorthub.cohorts.errors import CohortNotFound
from cohorthub.cohorts.membership import MembershipCache
from cohorthub.config import Settings
from cohorthub.errors import ResourceLocked
from cohorthub.identity.listeners import Merge
from cohorthub.store.tables import cohort_changes, cohort_chunks, cohort_import_requests, cohorts
from tests.integration.cohorts.factories import NOW, Tenant, add_user, add_users, make_tenant


@pytest.fixture
def tenant(container: Container) -> Tenant:
    """A workspace with Heap enabled."""
    return make_tenant(container)


def _import(
    c: Container, t: Tenant, changes: list[dict[str, Any]], *, cohort: str = "c1", now: float = NOW
) -> Any:
    with c.uow() as uow:
        return services.import_cohort_changes(
            uow=uow, cache=c.membership, partner="heap",
            body=t.body(cohort_id=cohort, cohort_changes=changes),
            quota=10**9, identifier_max_length=512, compaction_threshold=c.settings.compaction_threshold,
            request_id=str(uuid.uuid4()), now=now,
        )  # fmt: skip


def _members(c: Container, t: Tenant, cohort: str = "c1", cache: MembershipCache | None = None) -> set[int]:
    with c.uow(readonly=True) as uow:
        bitmap = services.cohort_bitmap(
            uow=uow,
            cache=cache or c.membership,
            workspace_id=t.workspace_id,
            partner="heap",
            cohort_id=cohort,
        )
    return set(bitmap)


def test_history_answers_who_entered_and_left_since(container: Container, tenant: Tenant) -> None:
    a, b, c = add_users(container, tenant.workspace_id, ["a", "b", "c"])
    _import(container, tenant, [{"user_ids": ["a", "b"]}], now=NOW + 1)
    _import(container, tenant, [{"user_ids": ["a"], "should_remove": True}], now=NOW + 2)
    _import(container, tenant, [{"user_ids": ["c"]}], now=NOW + 3)
    with container.uow(readonly=True) as uow:
        since = {
            t: services.changes_since(
                uow=uow, workspace_id=tenant.workspace_id, partner="heap", cohort_id="c1", since=t
            )
            for t in (NOW, NOW + 1, NOW + 3)
        }
    assert since[NOW] == ([b, c], [])
    assert since[NOW + 1] == ([c], [a])
    assert since[NOW + 3] == ([], [])
    with container.engine.connect() as conn:
        rows = conn.execute(select(cohort_changes.c.version, cohort_changes.c.reason)).all()
        requests = conn.execute(select(cohort_import_requests.c.entered)).scalars().all()
        cohort = conn.execute(select(cohorts)).one()
    assert sorted(rows) == [(1, "import"), (1, "import"), (2, "import"), (3, "import")]
    assert sorted(requests) == [0, 1, 2]
    assert (cohort.version, cohort.size, cohort.import_requests, cohort.last_import_at) == (3, 2, 3, NOW + 3)


def test_unknown_cohort_is_not_found(container: Container, tenant: Tenant) -> None:
    with container.uow(readonly=True) as uow, pytest.raises(CohortNotFound):
        services.changes_since(
            uow=uow, workspace_id=tenant.workspace_id, partner="heap", cohort_id="x", since=0
        )


@pytest.fixture
def second_process(settings: Settings) -> Iterator[Container]:
    """Another container on the same database: its own engine and membership cache."""
    other = bootstrap(settings, run_migrations=False)
    yield other
    other.close()


def test_caches_of_two_processes_catch_up_from_the_log(
    container: Container, second_process: Container, tenant: Tenant
) -> None:
    a, b, c = add_users(container, tenant.workspace_id, ["a", "b", "c"])
    _import(container, tenant, [{"user_ids": ["a", "b"]}])
    assert _members(second_process, tenant) == {a, b}
    _import(second_process, tenant, [{"user_ids": ["c"]}, {"user_ids": ["a"], "should_remove": True}])
    assert _members(container, tenant) == {b, c}
    assert _members(container, tenant, cache=MembershipCache()) == {b, c}


def test_compaction_snapshots_touched_chunks_and_loads_back(settings: Settings, tenant: Tenant) -> None:
    c = bootstrap(dataclasses.replace(settings, compaction_threshold=2), run_migrations=False)
    try:
        low = add_users(c, tenant.workspace_id, ["a", "b", "c"])
        high = add_user(c, tenant.workspace_id, external_id="far", num=3 * 65536 + 7)
        _import(c, tenant, [{"user_ids": ["a", "b", "c", "far"]}])
        _import(c, tenant, [{"user_ids": ["a"], "should_remove": True}])
        with c.engine.connect() as conn:
            chunks = dict(iter(conn.execute(select(cohort_chunks.c.chunk_no, cohort_chunks.c.bitmap))))
            snapshot = conn.execute(select(cohorts.c.snapshot_version)).scalar_one()
        assert sorted(chunks) == [0, 3]
        assert snapshot == 1
        expected = {low[1], low[2], high}
        assert _members(c, tenant, cache=MembershipCache()) == expected
        assert _members(c, tenant) == expected
    finally:
        c.close()


def test_merge_moves_membership_to_the_target(container: Container, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    orphan = add_user(container, ws, devices=["dev-1"])
    target, other = add_users(container, ws, ["t", "o"])
    _import(container, tenant, [{"device_ids": ["dev-1"]}], cohort="c1")
    _import(container, tenant, [{"device_ids": ["dev-1"]}, {"user_ids": ["t"]}], cohort="c2")
    _import(container, tenant, [{"user_ids": ["o"]}], cohort="c3")
    assert _members(container, tenant, "c1") == {orphan}
    with container.uow() as uow:
        for listener in container.identity_listeners:
            listener.users_merged(
                uow, [Merge(orphan_num=orphan, target_num=target)], workspace_id=ws, now=NOW
            )
        uow.commit()
    assert _members(container, tenant, "c1") == {target}
    assert _members(container, tenant, "c2") == {target}
    assert _members(container, tenant, "c3") == {other}
    with container.uow(readonly=True) as uow:
        found = services.memberships_of(
            uow=uow, cache=container.membership, workspace_id=ws, user_nums=[target, other]
        )
    assert sorted(x["cohort_id"] for x in found[target]) == ["c1", "c2"]
    assert found[other] == [{"partner": "heap", "cohort_id": "c3", "name": "c3"}]


def test_deleted_users_leave_every_cohort(container: Container, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    a, b = add_users(container, ws, ["a", "b"])
    _import(container, tenant, [{"user_ids": ["a", "b"]}], cohort="c1")
    _import(container, tenant, [{"user_ids": ["a"]}], cohort="c2")
    with container.uow() as uow:
        for listener in container.identity_listeners:
            listener.users_deleted(uow, [a], workspace_id=ws, now=NOW + 5)
        uow.commit()
    assert (_members(container, tenant, "c1"), _members(container, tenant, "c2")) == ({b}, set())
    with container.engine.connect() as conn:
        reasons = conn.execute(
            select(cohort_changes.c.reason).where(cohort_changes.c.entered.is_(False))
        ).scalars()
        assert sorted(reasons) == ["delete", "delete"]


def test_concurrent_writers_to_one_cohort_serialize(
    container: Container, second_process: Container, tenant: Tenant
) -> None:
    nums = add_users(container, tenant.workspace_id, [f"u{i}" for i in range(80)])
    errors: list[BaseException] = []

    def writer(c: Container, start: int) -> None:
        try:
            for i in range(start, 80, 4):
                _import(c, tenant, [{"user_ids": [f"u{i}"]}])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(c, s)) for s, c in enumerate([container, second_process] * 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _members(container, tenant) == set(nums)
    assert _members(second_process, tenant, cache=MembershipCache()) == set(nums)
    with container.engine.connect() as conn:
        assert conn.execute(select(cohorts.c.version, cohorts.c.size)).one() == (80, 80)


def test_a_held_cohort_lock_becomes_resource_locked(settings: Settings, tenant: Tenant) -> None:
    c = bootstrap(dataclasses.replace(settings, lock_timeout_seconds=0.2), run_migrations=False)
    try:
        _import(c, tenant, [{"user_ids": ["nobody"]}])
        with c.engine.connect() as holder:
            holder.begin()  # SQLite: BEGIN IMMEDIATE takes the database's write lock
            holder.execute(select(cohorts).with_for_update())  # PostgreSQL: the cohort row's lock
            with pytest.raises(ResourceLocked) as info:
                _import(c, tenant, [{"user_ids": ["nobody"]}])
            holder.rollback()
        assert info.value.message == "Resource locked"
        _import(c, tenant, [{"user_ids": ["nobody"]}])
    finally:
        c.close()


def test_cohort_ids_are_per_workspace(container: Container, tenant: Tenant) -> None:
    other = make_tenant(container, name="Other")
    add_users(container, other.workspace_id, ["x"])
    _import(container, other, [{"user_ids": ["x"]}])
    _import(container, tenant, [{"user_ids": ["x"]}])
    assert len(_members(container, other)) == 1
    assert _members(container, tenant) == set()
    with container.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cohorts")).scalar_one() == 2
