"""Decoding request bodies: the depth limit, whatever the brackets inside strings."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cohorthub.api.http import MAX_JSON_DEPTH, decode_json, nested_deeper_than
from cohorthub.errors import InvalidInput


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    body = b'{"name": "' + b"[{" * 500 + b'", "ids": [["a"]]}'
    assert decode_json(body)["ids"] == [["a"]]


@pytest.mark.parametrize("padding", [0, 200_000])  # below and above the inline size
def test_nesting_past_the_limit_is_refused(padding: int) -> None:
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(InvalidInput, match="nested deeper than 64 levels"):
        decode_json(b'{"pad": "' + b"x" * padding + b'", "v": ' + deep + b"}")
    assert decode_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None


def depth(value: object) -> int:
    """How deep arrays and objects nest in a decoded value (the reference)."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        (b"1", 0),
        (b'"[[{{"', 0),
        (b"[]", 1),
        (b"{}", 1),
        (b'{"a": []}', 2),
        (b'[[], [[]], {"k": [{}]}]', 4),
        (b'["]]]", "[[[", {"}": "{"}]', 2),
        (b'["a\\"[", "\\\\", "\\\\\\"]", ["\\\\"]]', 2),  # escaped quotes and backslashes before a quote
        (b'["\\\\\\\\", [[]], "\\"", "{\\\\"]', 3),
        (b'{"": "", "x": [""], "": [[""]]}', 3),
        (b'["\\u005b\\u007b", "\\n[", "\\t{"]', 1),  # escapes of brackets are not brackets either
        (b' [ \n { "a" : [ 1 , 2 ] } ] ', 3),
        ('["é[", {"ü": ["😀]"]}]'.encode(), 3),
    ],
)
def test_nesting_is_read_from_the_text(text: bytes, levels: int) -> None:
    assert depth(msgspec.json.decode(text)) == levels
    assert nested_deeper_than(text, levels - 1) is (levels > 0)
    assert not nested_deeper_than(text, levels)


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1])
def test_brackets_in_strings_at_every_level_do_not_count(levels: int) -> None:
    text = b"".join(b'["]\\\\", "\\"[", ' for _ in range(levels)) + b"0" + b"]" * levels
    assert depth(msgspec.json.decode(text)) == levels
    assert nested_deeper_than(text, MAX_JSON_DEPTH) is (levels > MAX_JSON_DEPTH)
    if levels > MAX_JSON_DEPTH:
        with pytest.raises(InvalidInput, match="nested deeper than 64 levels"):
            decode_json(text)
    else:
        assert decode_json(text) is not None


_texts = st.text(alphabet=st.sampled_from('[]{}"\\\n\tab é/'), max_size=6)
_json = st.recursive(
    st.none() | st.integers() | _texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
    max_leaves=30,
)


@given(_json, st.integers(min_value=0, max_value=12))
def test_nesting_matches_the_decoded_value(value: object, limit: int) -> None:
    text = msgspec.json.encode(value)
    assert nested_deeper_than(text, limit) is (depth(value) > limit)
    spaced = json.dumps(value, indent=1, ensure_ascii=True).encode()  # other spacing, \\u escapes
    assert nested_deeper_than(spaced, limit) is (depth(value) > limit)
