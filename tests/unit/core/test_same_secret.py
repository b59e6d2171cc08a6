"""Comparing a secret a client sent with the expected one: any text sent is an answer, never an error."""

from __future__ import annotations

import pytest

from cohorthub.keys import same_secret


def test_equal_secrets_match_and_others_do_not() -> None:
    assert same_secret("abc-123", "abc-123")
    assert not same_secret("abc-124", "abc-123")
    assert not same_secret("", "abc-123")


@pytest.mark.parametrize("sent", ["é", "𖮷\u0091", "\ud800", "abc\x00", "ａｂｃ"])
def test_text_that_is_not_ascii_is_simply_not_the_secret(sent: str) -> None:
    assert not same_secret(sent, "abc")  # hmac.compare_digest on str raised TypeError (a 500)
    assert same_secret(sent, sent)
