"""The sync use case against the in-memory twin of the partner endpoints and an in-memory state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from cohorthub.partner_client import Cohort, CohortSyncClient, IterableSource, RetriesExhausted, StateStore
from cohorthub.partner_client.memory import InMemoryPartner

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def partner() -> InMemoryPartner:
    return InMemoryPartner()


@pytest.fixture
def client(partner: InMemoryPartner) -> Iterator[CohortSyncClient]:
    with CohortSyncClient(
        "http://partner.invalid",
        partner="heap",
        partner_api_key="PK",
        data_import_key="DIK",
        state=StateStore(":memory:"),
        api=partner,
        clock=lambda: NOW,
    ) as sync_client:
        yield sync_client


def ids(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}{i}" for i in range(start, start + n)]


def acknowledged(client: CohortSyncClient, cohort_id: str = "c1") -> set[tuple[str, str]]:
    state = client.state.ensure(client.target, cohort_id)
    return client.state.previous(state.key).all_members()


def test_first_sync_sends_name_then_every_member(client: CohortSyncClient, partner: InMemoryPartner) -> None:
    result = client.sync(Cohort("c1", "Trial abandoners"), IterableSource(ids("u", 2500)))
    assert partner.calls[0] == ("cohorts", "Trial abandoners")
    assert [len(c[1][0]["user_ids"]) for c in partner.calls[1:]] == [1000, 1000, 500]
    assert (result.name_sent, result.adds, result.removes, result.members, result.requests) == (
        True,
        2500,
        0,
        2500,
        4,
    )
    assert partner.members["c1"] == {("external_id", i) for i in ids("u", 2500)}


def test_later_syncs_send_only_entries_and_exits(client: CohortSyncClient, partner: InMemoryPartner) -> None:
    client.sync(Cohort("c1", "T"), IterableSource(ids("u", 3000)))
    partner.calls.clear()
    result = client.sync(Cohort("c1", "T"), IterableSource(ids("u", 3000, start=10)))
    assert (result.name_sent, result.adds, result.removes) == (False, 10, 10)
    assert [c[1][0]["should_remove"] for c in partner.calls] == [True, False]  # exits first
    assert partner.members["c1"] == {("external_id", i) for i in ids("u", 3000, start=10)}
    partner.calls.clear()
    assert client.sync(Cohort("c1", "T"), IterableSource(ids("u", 3000, start=10))).requests == 0
    assert partner.calls == []


def test_rename_resends_the_name_only(client: CohortSyncClient, partner: InMemoryPartner) -> None:
    client.sync(Cohort("c1", "Old"), IterableSource(ids("u", 10)))
    partner.calls.clear()
    result = client.sync(Cohort("c1", "New"), IterableSource(ids("u", 10)))
    assert partner.calls == [("cohorts", "New")]
    assert (result.name_sent, result.adds, result.requests) == (True, 0, 1)


def test_dry_run_sends_nothing_and_changes_no_state(
    client: CohortSyncClient, partner: InMemoryPartner
) -> None:
    result = client.sync(Cohort("c1", "T"), IterableSource(ids("u", 7)), dry_run=True)
    assert (result.dry_run, result.adds, result.requests, len(result.sample_adds)) == (True, 7, 0, 5)
    assert partner.calls == []
    assert acknowledged(client) == set()
    assert client.sync(Cohort("c1", "T"), IterableSource(ids("u", 7))).adds == 7


def test_state_records_only_acknowledged_chunks(client: CohortSyncClient, partner: InMemoryPartner) -> None:
    client.sync(Cohort("c1", "T"), IterableSource(ids("u", 1500)))
    target = ids("u", 1500, start=1200)  # 1,200 exits, 1,200 entries
    partner.fail_after(1)
    with pytest.raises(RetriesExhausted):
        client.sync(Cohort("c1", "T"), IterableSource(target))
    state = acknowledged(client)
    assert len(state) == 1500 - 1000  # the first chunk of exits was acknowledged, nothing else
    assert state == partner.members["c1"]
    (row,) = client.status()
    assert (row.failures, row.removes_sent, row.adds_sent) == (1, 1000, 1500)
    assert row.last_error is not None and "twin configured to fail" in row.last_error
    partner.fail_after(None)
    sent_before = partner.sent_identifiers()
    result = client.sync(Cohort("c1", "T"), IterableSource(target))
    assert (result.removes, result.adds) == (200, 1200)
    assert partner.sent_identifiers() - sent_before == 1400
    assert partner.members["c1"] == acknowledged(client) == {("external_id", i) for i in target}


def test_reset_forces_a_full_resend(client: CohortSyncClient, partner: InMemoryPartner) -> None:
    client.sync(Cohort("c1", "T"), IterableSource(ids("u", 20)))
    assert client.reset("c1") == 1
    result = client.sync(Cohort("c1", "T"), IterableSource(ids("u", 20)))
    assert (result.name_sent, result.adds) == (True, 20)


def test_cohorts_are_kept_apart_per_cohort_and_per_key(partner: InMemoryPartner) -> None:
    store = StateStore(":memory:")
    first = CohortSyncClient(
        "http://x", partner="heap", partner_api_key="PK", data_import_key="A", state=store, api=partner
    )
    other = CohortSyncClient(
        "http://x", partner="heap", partner_api_key="PK", data_import_key="B", state=store, api=partner
    )
    first.sync(Cohort("c1", "T"), IterableSource(["u1"]))
    assert first.sync(Cohort("c2", "T"), IterableSource(["u1"])).adds == 1
    assert other.sync(Cohort("c1", "T"), IterableSource(["u1"])).adds == 1
    assert first.sync(Cohort("c1", "T"), IterableSource(["u1"])).adds == 0


def test_an_interrupt_reaches_the_caller_even_when_the_state_cannot_record_it(
    client: CohortSyncClient, partner: InMemoryPartner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cohorthub.partner_client import StateError

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    def unrecordable(*_: object) -> None:
        raise StateError("state file error: cannot start a transaction within a transaction")

    monkeypatch.setattr(partner, "send_changes", interrupted)
    monkeypatch.setattr(client.state, "record_failure", unrecordable)
    with pytest.raises(KeyboardInterrupt):  # a StateError here was taken for a failed sync, retried
        client.sync(Cohort("c1", "T"), IterableSource(ids("u", 10)))
