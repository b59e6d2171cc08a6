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


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://x", "absolute http"),
        ("heap.example/braze", "absolute http"),
        ("https://u:p@heap.example/", "credentials"),
        ("http://\x0f\xaai/", "control characters"),  # stored once, then every send failed before the wire
        ("http://heap.example/bra ze", "spaces"),
        ("http://heap.example\x7f/", "control characters"),
        ("http://heap.example:abc/", "not a valid URL"),
        ("http://heap.example:70000/", "not a valid URL"),
        ("http://heap.example:0/", "port 0"),
        ("http://[::1/", "not a valid URL"),
        ("http://[::zz]/", "not a valid URL|IPv6"),  # urlsplit checks it from Python 3.11.4
        ("http://heap..example/", "host name"),
        ("http://" + "a" * 64 + ".example/", "host name"),
        ("http://heap.example/\x00", "NUL"),
    ],
)
def test_bad_urls(url: str, why: str) -> None:
    with pytest.raises(InvalidConnector, match=why):
        validate_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://heap.example/braze",
        "  http://127.0.0.1:8080/events?x=1  ",
        "http://[::1]:9000/e",
        "http://[fe80::1%25eth0]/e",
        "https://b\u00fccher.example/\u00e9v\u00e9nements",  # IDN host, non-ASCII path
        "https://heap.example./braze",
        "http://" + "a" * 63 + ".example/",
    ],
)
def test_good_urls_are_kept_trimmed(url: str) -> None:
    assert validate_url(url) == url.strip()


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
