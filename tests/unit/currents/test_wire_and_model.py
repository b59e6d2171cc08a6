"""Request body and headers, connector validation, event selection."""

from __future__ import annotations

import msgspec
import pytest

from cohorthub.config import Secret
from cohorthub.currents.errors import InvalidConnector
from cohorthub.currents.model import EventSelection, validate_batch_size, validate_token, validate_url
from cohorthub.currents.wire import batch_body, parse_retry_after, request_headers


def test_body_is_spliced_from_stored_payloads() -> None:
    body = batch_body([b'{"id":"a"}', b'{"id":"b"}'])
    assert body == b'{"events":[{"id":"a"},{"id":"b"}]}'
    assert msgspec.json.decode(batch_body([])) == {"events": []}


def test_headers() -> None:
    assert request_headers(Secret("t0k3n")) == {
        "Content-Type": "application/json",
        "Braze-Currents-Version": "1",
        "Authorization": "Bearer t0k3n",
    }
    assert "Authorization" not in request_headers(None)


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("120", now=0) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after(None, now=0) is None


def test_event_selection_globs() -> None:
    selection = EventSelection.parse("users.messages.*, users.behaviors.CustomEvent")
    assert selection.matches("users.messages.email.Send")
    assert selection.matches("users.behaviors.CustomEvent")
    assert not selection.matches("users.behaviors.Purchase")
    assert EventSelection.parse("*").matches("users.UserOrphan")


@pytest.mark.parametrize("text", ["", " , ", "users.[abc]", "users messages"])
def test_bad_event_selection(text: str) -> None:
    with pytest.raises(InvalidConnector):
        EventSelection.parse(text)


@pytest.mark.parametrize("url", ["ftp://x", "heap.example/braze", "https://u:p@heap.example/"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(InvalidConnector):
        validate_url(url)


def test_tokens_batch_sizes_and_secrets() -> None:
    token = validate_token("0p3n5354m3==")
    assert token is not None and "0p3n" not in repr(token)
    assert validate_token("") is None
    with pytest.raises(InvalidConnector):
        validate_token("has space")
    with pytest.raises(InvalidConnector):
        validate_batch_size(0)
    assert validate_batch_size(1000) == 1000


def test_retry_after_with_non_ascii_digits_is_ignored() -> None:
    assert parse_retry_after("²", now=0) is None  # str.isdigit() says yes; float() says no
