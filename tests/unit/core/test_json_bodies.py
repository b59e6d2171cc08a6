"""Decoding request bodies: the depth limit, whatever the brackets inside strings."""

from __future__ import annotations

import pytest

from cohorthub.api.http import MAX_JSON_DEPTH, decode_json
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
