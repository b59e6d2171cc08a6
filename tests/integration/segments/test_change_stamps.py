"""Segment catch-up follows the users' change stamps: late commits, and only what changed."""

from __future__ import annotations

import pytest
from pyroaring import BitMap

from cohorthub.bootstrap import Container
from cohorthub.segments.model import parse_filter
from cohorthub.segments.ports import Changes, SegmentFacts
from tests.integration.segments import factories as f
from tests.integration.segments.test_engine_agrees import engine_members

NOW = 1_800_000_000.0
ES = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}


class CountingFacts:
    """Wraps the store's facts and counts the user changes catch-up reads."""

    def __init__(self, facts: SegmentFacts) -> None:
        self.facts = facts
        self.user_rows = 0

    def changes(self, *args: object) -> Changes:
        found: Changes = self.facts.changes(*args)  # type: ignore[arg-type]
        self.user_rows += len(found.rows["users"])
        return found

    def __getattr__(self, name: str) -> object:
        return getattr(self.facts, name)


def test_a_read_costs_what_changed_since_the_previous_one(container: Container) -> None:
    with container.uow() as uow:
        ws = f.workspace(uow.conn, now=NOW)
        nums = [f.user(uow.conn, ws, now=NOW, country="FR") for _ in range(300)]
        uow.commit()
    assert engine_members(container, ws, ES) == set()
    with container.uow() as uow:  # recent writes, all within any time margin
        for num in nums[:3]:
            f.change_user(uow.conn, num, now=NOW + 1, country="ES")
        uow.commit()
    with container.uow(readonly=True) as uow:
        counting = CountingFacts(uow.segments)
        members, _ = container.segments.evaluate(
            counting,  # type: ignore[arg-type]
            cohorts=lambda _p, _c, _s: BitMap(),
            workspace_id=ws,
            node=parse_filter(ES),
            definitions={},
            now=NOW + 2,
        )
    assert set(members) == set(nums[:3])
    assert counting.user_rows == 3  # not the 300 users written a moment ago


def test_a_user_change_committed_after_a_later_one_is_still_seen(container: Container) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers commit one at a time, in stamp order")
    with container.uow() as uow:
        ws = f.workspace(uow.conn, now=NOW)
        early, late = (f.user(uow.conn, ws, now=NOW, country="FR") for _ in range(2))
        uow.commit()
    assert engine_members(container, ws, ES) == set()
    with container.uow() as first:
        f.change_user(first.conn, early, now=NOW + 1, country="ES")  # stamped first, commits last
        with container.uow() as second:
            f.change_user(second.conn, late, now=NOW + 1, country="ES")
            second.commit()
        assert engine_members(container, ws, ES) == {late}
        first.commit()
    assert engine_members(container, ws, ES) == {early, late}
