from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cohorthub.partner_client.chunking import MAX_IDS_PER_REQUEST, chunk_changes


def _count(change: dict[str, object]) -> int:
    return sum(len(change[key]) for key in ("user_ids", "device_ids", "aliases"))  # type: ignore[arg-type]


def test_limit_counts_identifiers_across_all_types() -> None:
    groups = [("external_id", [f"u{i}" for i in range(600)]), ("device_id", [f"d{i}" for i in range(300)])]
    groups.append(("alias:email", [f"a{i}@x.com" for i in range(250)]))
    chunks = list(chunk_changes(groups, should_remove=False))
    changes = [chunk.to_change() for chunk in chunks]
    assert [_count(c) for c in changes] == [1000, 150]
    first = changes[0]
    assert (len(first["user_ids"]), len(first["device_ids"]), len(first["aliases"])) == (600, 300, 100)
    assert first["aliases"][0] == {"alias_name": "a0@x.com", "alias_label": "email"}
    assert first["should_remove"] is False


def test_exactly_one_thousand_is_one_request_and_one_more_is_two() -> None:
    assert len(list(chunk_changes([("external_id", ["x"] * 1000)], should_remove=True))) == 1
    assert [c.count for c in chunk_changes([("external_id", ["x"] * 1001)], should_remove=True)] == [1000, 1]


def test_every_change_object_has_all_id_keys_and_the_remove_flag() -> None:
    (chunk,) = chunk_changes([("device_id", ["d1"])], should_remove=True)
    assert chunk.to_change() == {"user_ids": [], "device_ids": ["d1"], "aliases": [], "should_remove": True}


def test_no_chunks_for_no_changes_and_limit_must_be_positive() -> None:
    assert list(chunk_changes([], should_remove=False)) == []
    with pytest.raises(ValueError, match="positive"):
        list(chunk_changes([("external_id", ["a"])], should_remove=False, limit=0))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["external_id", "device_id", "alias:email", "alias:phone"]), st.integers(0, 2500)
        ),
        max_size=8,
    ),
    st.integers(1, MAX_IDS_PER_REQUEST),
)
def test_chunks_preserve_every_identifier_in_order_and_respect_the_limit(
    sizes: list[tuple[str, int]], limit: int
) -> None:
    groups = [(ns, [f"{ns}-{n}-{i}" for i in range(n)]) for ns, n in sizes]
    chunks = list(chunk_changes(groups, should_remove=False, limit=limit))
    assert all(0 < chunk.count <= limit for chunk in chunks)
    assert all(_count(chunk.to_change()) == chunk.count for chunk in chunks)
    assert all(chunk.count == limit for chunk in chunks[:-1])
    flat = [(ns, i) for chunk in chunks for ns, ids in chunk.groups.items() for i in ids]
    assert sorted(flat) == sorted((ns, i) for ns, ids in groups for i in ids)
