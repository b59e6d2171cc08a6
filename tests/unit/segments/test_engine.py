"""The bitmap algebra agrees with the reference evaluator on random trees and populations."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from pyroaring import BitMap

from cohorthub.segments.engine import evaluate
from cohorthub.segments.indexes import IdWatermark
from cohorthub.segments.model import Leaf, parse_filter
from cohorthub.segments.reference import UserFacts, leaf_matches, matches
from tests.unit.segments.strategies import NOW, Person, people, trees


class FactsSource:
    """Leaf bitmaps straight from in-memory facts (the engine's algebra under test)."""

    def __init__(self, users: list[UserFacts]) -> None:
        self.users = users

    def universe(self) -> BitMap:
        return BitMap(u.num for u in self.users)

    def leaf(self, leaf: Leaf) -> BitMap:
        return BitMap(u.num for u in self.users if leaf_matches(leaf, u, now=NOW))


@settings(max_examples=150, deadline=None)
@given(trees(), people())
def test_engine_algebra_matches_reference(raw: dict[str, Any], population: list[Person]) -> None:
    node = parse_filter(raw)
    users = [p.facts(i + 1) for i, p in enumerate(population)]
    expected = {u.num for u in users if matches(node, u, now=NOW, definitions={})}
    assert set(evaluate(node, source=FactsSource(users), definitions={})) == expected


def test_segment_membership_leaves_are_evaluated_once_and_excludes_invert() -> None:
    users = [UserFacts(num=1, external_id="a"), UserFacts(num=2)]
    inner = parse_filter({"type": "identity", "field": "external_id", "op": "exists"})
    outer = parse_filter({"type": "segment", "segment_id": "s1", "op": "excludes"})
    assert set(evaluate(outer, source=FactsSource(users), definitions={"s1": inner})) == {2}


def test_watermark_keeps_no_gaps_where_ids_become_visible_in_order() -> None:
    mark = IdWatermark(10, margin=30)
    mark.observe([11, 14], now=100.0)  # SQLite: 12 and 13 were taken by no committed write, for good
    assert (mark.high, mark.gaps) == (14, {})


def test_watermark_rereads_a_gap_until_every_transaction_that_could_fill_it_has_ended() -> None:
    mark = IdWatermark(10, margin=30)
    mark.observe([11, 14], now=100.0, snapshot=(500, 510))
    assert (mark.high, sorted(mark.gaps)) == (14, [12, 13])
    mark.observe([12], now=100.1, snapshot=(505, 512))  # a slower writer committed 12
    assert sorted(mark.gaps) == [13]
    mark.observe([], now=100.6, snapshot=(505, 515))  # settled: waits for the transactions before 515
    mark.observe([], now=100.7, snapshot=(514, 516))  # one of them may still write 13
    assert sorted(mark.gaps) == [13]
    mark.observe([], now=100.8, snapshot=(515, 517))  # all ended, and this probe read no 13
    assert mark.gaps == {}


def test_watermark_forgets_a_gap_after_the_margin_whatever_stays_open() -> None:
    mark = IdWatermark(10, margin=30)
    mark.observe([11, 14], now=100.0, snapshot=(500, 510))
    mark.observe([], now=129.0, snapshot=(500, 600))  # a transaction older than the gap stays open
    assert sorted(mark.gaps) == [12, 13]
    mark.observe([], now=131.0, snapshot=(500, 600))
    assert mark.gaps == {}
