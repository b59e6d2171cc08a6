"""Catch-up in one probe: more changed users than it reads facts of; clock moves between reads."""

from __future__ import annotations

from typing import Any

import pytest

from cohorthub.bootstrap import Container, bootstrap
from cohorthub.config import Settings
from cohorthub.segments import services
from cohorthub.segments.model import DAY, STANDARD_ATTRIBUTES, parse_time
from cohorthub.segments.ports import SOURCES, FactsWanted
from cohorthub.store import segment_changes as store
from tests.integration.segments import factories as f

NOW = 1_800_000_000.0
ES = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}
RECENT = {"type": "event", "event": "play", "op": "at_least", "count": 1, "within_days": 1}


def _members(c: Container, ws: str, raw: dict[str, Any], now: float) -> set[int]:
    with c.uow(readonly=True) as uow:
        return set(
            services.evaluate_filter(
                uow=uow, indexes=c.segments, membership=c.membership, workspace_id=ws, raw=raw, now=now
            )
        )


def _fresh(settings: Settings, ws: str, raw: dict[str, Any], now: float) -> set[int]:
    other = bootstrap(settings, run_migrations=False)
    try:
        return _members(other, ws, raw, now)
    finally:
        other.close()


def test_more_changed_users_than_the_probe_reads_are_read_in_batches(
    container: Container, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "_COVERED", 3)
    raw = {"or": [ES, RECENT]}
    with container.uow() as uow:
        ws = f.workspace(uow.conn, now=NOW)
        nums = [f.user(uow.conn, ws, now=NOW, country="FR") for _ in range(12)]
        uow.commit()
    assert _members(container, ws, raw, NOW) == set()
    with container.uow() as uow:
        for num in nums[::2]:
            f.change_user(uow.conn, num, now=NOW + 1, country="ES")
        for num in nums[1:6:2]:
            f.event(uow.conn, ws, num, "play", at=NOW)
        f.user(uow.conn, ws, now=NOW + 1, country="ES")
        uow.commit()
    expected = _fresh(settings, ws, raw, NOW + 2)
    assert len(expected) == 10
    assert _members(container, ws, raw, NOW + 2) == expected


def test_a_clock_move_and_a_change_between_reads_equal_a_fresh_evaluation(
    container: Container, settings: Settings
) -> None:
    raw = {"and": [RECENT, {"not": ES}]}
    with container.uow() as uow:
        ws = f.workspace(uow.conn, now=NOW)
        nums = [f.user(uow.conn, ws, now=NOW, country="FR") for _ in range(4)]
        for i, num in enumerate(nums):
            f.event(uow.conn, ws, num, "play", at=NOW - DAY + 100 * i)
        uow.commit()
    assert _members(container, ws, raw, NOW) == set(nums)
    with container.uow() as uow:
        f.change_user(uow.conn, nums[3], now=NOW + 1, country="ES")
        f.event(uow.conn, ws, nums[0], "play", at=NOW + 150)
        uow.commit()
    for later in (NOW + 150, NOW + 250, NOW + DAY + 200, NOW - 60):  # the last: the clock went back
        assert _members(container, ws, raw, later) == _fresh(settings, ws, raw, later), later


def test_times_of_changed_users_keep_every_digit(container: Container, settings: Settings) -> None:
    edge = "2027-01-15T08:00:00.123456Z"
    raw = {"type": "event", "event": "play", "op": "last_after", "time": edge}
    with container.uow() as uow:
        ws = f.workspace(uow.conn, now=NOW)
        num = f.user(uow.conn, ws, now=NOW)
        uow.commit()
    assert _members(container, ws, raw, NOW) == set()  # the leaf is built; the event comes by catch-up
    with container.uow() as uow:
        f.event(uow.conn, ws, num, "play", at=parse_time(edge) + 5e-7)  # 17 significant digits
        uow.commit()
    assert _members(container, ws, raw, NOW) == {num} == _fresh(settings, ws, raw, NOW)


def test_a_probe_reads_only_the_columns_its_leaves_use(container: Container) -> None:
    with container.uow() as uow:
        ws = f.workspace(uow.conn, now=NOW)
        num = f.user(uow.conn, ws, now=NOW, country="ES", email="a@example.com", custom={"plan": "pro"})
        f.user(uow.conn, f.workspace(uow.conn, now=NOW), now=NOW, country="ES")  # another workspace's
        uow.commit()
    after = dict.fromkeys(SOURCES, (0, ()))
    with container.uow(readonly=True) as uow:
        narrow = uow.segments.changes(
            ws, after, (), FactsWanted(standard=frozenset({"created_at"}), custom=False)
        )
        wide = uow.segments.changes(ws, after, (), FactsWanted())
    # only this workspace's user, with the columns asked for (times as floats, every digit)
    assert [(u.num, dict(u.standard), dict(u.custom)) for u in narrow.facts] == [
        (num, {"created_at": NOW}, {})
    ]
    (user,) = wide.facts
    assert user.custom == {"plan": "pro"} and user.external_id is None
    assert user.standard["country"] == "ES" and user.standard["email"] == "a@example.com"
    assert set(user.standard) == {*STANDARD_ATTRIBUTES, "email_subscribe"}


def test_leaves_on_several_standard_columns_catch_up_as_a_fresh_evaluation(
    container: Container, settings: Settings
) -> None:
    raw = {
        "or": [
            {"and": [ES, {"type": "identity", "field": "email_subscribe", "op": "equals",
             "value": "opted_in"}]},
            {"type": "attribute", "attribute": "created_at", "op": "after", "value": "2027-01-15T08:00:00Z"},
            {"and": [{"type": "identity", "field": "email", "op": "exists"}, {"not": {
                "type": "custom_attribute", "attribute": "plan", "data_type": "string", "op": "equals",
                "value": "free"}}]},
        ]
    }  # fmt: skip
    with container.uow() as uow:
        ws = f.workspace(uow.conn, now=NOW)
        nums = [f.user(uow.conn, ws, now=NOW, country="FR") for _ in range(5)]
        uow.commit()
    assert _members(container, ws, raw, NOW) == _fresh(settings, ws, raw, NOW) == set()
    with container.uow() as uow:
        f.change_user(uow.conn, nums[0], now=NOW + 1, country="ES", email_subscribe="opted_in")
        f.change_user(uow.conn, nums[1], now=NOW + 1, country="ES")
        f.change_user(uow.conn, nums[2], now=NOW + 1, email="b@example.com", custom={"plan": "pro"})
        f.change_user(uow.conn, nums[3], now=NOW + 1, email="c@example.com", custom={"plan": "free"})
        f.change_user(uow.conn, nums[4], now=NOW + 1, created_at=parse_time("2027-01-16T00:00:00Z"))
        uow.commit()
    expected = _fresh(settings, ws, raw, NOW + 2)
    assert expected == {nums[0], nums[2], nums[4]}
    assert _members(container, ws, raw, NOW + 2) == expected
