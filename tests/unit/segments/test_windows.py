"""Relative-time leaves: the moments at which a user's answer may change as the window slides."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohorthub.segments.model import DAY, AttributeLeaf, EventLeaf, relative_cutoff
from cohorthub.segments.reference import UserFacts, leaf_matches
from cohorthub.segments.windows import Timeline, leaf_cutoff, next_moment, window_days
from tests.unit.segments.strategies import NOW

WITHIN = EventLeaf(kind="event", name="play", op="at_least", count=2, within_days=3.0)
AGO = AttributeLeaf(name="seen", custom=True, data_type="time", op="more_than_days_ago", value=2.0)


def test_only_relative_leaves_have_a_window() -> None:
    assert window_days(WITHIN) == 3.0
    assert window_days(AGO) == 2.0
    assert leaf_cutoff(EventLeaf(kind="event", name="play", op="at_least", count=1), NOW) is None
    assert leaf_cutoff(WITHIN, NOW + 59) == relative_cutoff(NOW, 3)


def test_timeline_returns_each_user_whose_moment_the_cutoff_passed_once() -> None:
    timeline = Timeline(100.0, [(50.0, 1), (100.0, 2), (130.0, 3), (130.0, 4), (500.0, 5)])
    assert len(timeline) == 4  # 50 is already behind the cutoff
    timeline.add(120.0, 6)
    timeline.add(90.0, 7)  # behind the cutoff: never due
    timeline.add(None, 8)
    assert timeline.advance(100.0) == set()
    assert timeline.advance(130.0) == {2, 6}
    assert timeline.advance(131.0) == {3, 4}
    assert timeline.advance(10_000.0) == {5}
    assert len(timeline) == 0
    with pytest.raises(ValueError, match="forward"):
        timeline.advance(1.0)


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.floats(NOW - 6 * DAY, NOW), max_size=5),
    start=st.floats(0, 2 * DAY),
    step=st.floats(0, 2 * DAY),
    leaf=st.sampled_from([WITHIN, AGO]),
)
def test_an_answer_changes_only_at_the_moments_the_timeline_returns(
    times: list[float], start: float, step: float, leaf: EventLeaf | AttributeLeaf
) -> None:
    user = UserFacts(num=1, events={"play": times}, custom={"seen": times[0] if times else None})
    before, after = NOW + start, NOW + start + step
    c0, c1 = leaf_cutoff(leaf, before), leaf_cutoff(leaf, after)
    assert c0 is not None and c1 is not None
    timeline = Timeline(c0, [])
    timeline.add(next_moment(leaf, user, cutoff=c0), 1)
    due = timeline.advance(c1)
    if leaf_matches(leaf, user, now=before) != leaf_matches(leaf, user, now=after):
        assert due == {1}
    if not due:
        assert leaf_matches(leaf, user, now=before) == leaf_matches(leaf, user, now=after)
