"""Parsing the SDK's data requests and translating them into /users/track items (pure)."""

from __future__ import annotations

import pytest

from cohorthub.apps.errors import InvalidApp, InvalidSdkRequest
from cohorthub.apps.model import fingerprint, parse_sdk_request
from cohorthub.apps.translate import parse_origin, plan

NOW = 1_800_000_000.0
DEVICE = {"browser": "Chrome", "browser_version": "131", "os_version": "Mac OS X", "locale": "es-es",
          "time_zone": "Europe/Madrid", "user_agent": "Mozilla/5.0"}  # fmt: skip


def test_device_fields_and_currents_context() -> None:
    request = parse_sdk_request({"device_id": "d1", "device": DEVICE, "sdk_version": "6.13.0"}, now=NOW)
    assert request.device is not None
    assert request.device.currents() == {
        "platform": "web",
        "os_version": "Mac OS X",
        "device_model": "Chrome",
    }
    assert request.device.sdk_version == "6.13.0" and request.device.time_zone == "Europe/Madrid"


@pytest.mark.parametrize(
    ("body", "code"),
    [([], "invalid_request"), ({}, "no_device_identifier"), ({"device_id": " "}, "no_device_identifier"),
     ({"device_id": "d", "events": {}}, "invalid_request")],
)  # fmt: skip
def test_requests_without_a_device_or_shape_are_refused(body: object, code: str) -> None:
    with pytest.raises(InvalidSdkRequest) as caught:
        parse_sdk_request(body, now=NOW)
    assert caught.value.code == code


def test_events_are_sorted_into_usable_ignored_unknown_and_malformed() -> None:
    events = [
        {"name": "ss", "time": NOW, "session_id": "s"},
        {"name": "ss", "time": NOW},  # no session
        {"name": "se", "time": NOW, "session_id": "s", "data": {"d": -1}},
        {"name": "ce", "time": NOW + 999, "session_id": "s", "data": {"n": "x"}},  # from the future: now
        {"name": "lr", "time": NOW, "data": {}},
        {"name": "nope", "time": NOW},
        {"name": "ie", "time": NOW, "data": {"e": "x"}},
        {"name": "ce", "time": "yesterday", "data": {"n": "x"}},
    ]
    request = parse_sdk_request({"device_id": "d", "events": events}, now=NOW)
    assert [e.code for e in request.events] == ["ss", "ce"]
    assert request.events[1].time == NOW
    assert (request.malformed, request.ignored, request.unknown, request.sdk_errors) == (3, 1, 1, 1)


def test_numbers_past_the_float_range_make_an_event_malformed() -> None:
    huge = 10**309
    events = [
        {"name": "ce", "time": huge, "session_id": "s", "data": {"n": "x"}},
        {"name": "se", "time": NOW, "session_id": "s", "data": {"d": huge}},
        {"name": "p", "time": NOW, "session_id": "s", "data": {"pid": "sku", "p": huge}},
        {"name": "ce", "time": NOW, "session_id": "s", "data": {"n": "kept", "p": {"big": huge}}},
    ]
    request = parse_sdk_request({"device_id": "d", "events": events}, now=NOW)
    assert request.malformed == 2
    result = plan(request.events, request.attributes, device_id="d", app_id="app", now=NOW)
    [kept] = result.batch.events
    assert kept.name == "kept"
    assert [(e.input_array, e.index, e.type) for e in result.batch.errors] == [
        ("events", 0, "price must be a number")
    ]


def test_a_request_may_name_at_most_75_users_across_events_and_attributes() -> None:
    events = [{"name": "ce", "time": NOW, "data": {"n": "x"}, "user_id": f"u{i}"} for i in range(40)]
    attributes = [{"user_id": f"u{i}"} for i in range(35, 75)]
    assert (
        len(parse_sdk_request({"device_id": "d", "events": events, "attributes": attributes}, now=NOW).events)
        == 40
    )
    with pytest.raises(InvalidSdkRequest, match="names more than 75 users") as caught:
        parse_sdk_request(
            {"device_id": "d", "events": events, "attributes": [*attributes, {"user_id": "u75"}]}, now=NOW
        )
    assert caught.value.code == "invalid_request"


def test_fingerprint_is_the_events_own_identity() -> None:
    event = {"name": "ce", "time": NOW, "session_id": "s", "data": {"n": "x", "p": {"a": 1, "b": 2}}}
    same = {"session_id": "s", "data": {"n": "x", "p": {"b": 2, "a": 1}}, "time": NOW, "name": "ce"}
    assert fingerprint("d", event) == fingerprint("d", same)
    assert fingerprint("d", event) != fingerprint("other-device", event)
    assert fingerprint("d", event) != fingerprint("d", {**event, "time": NOW + 0.001})


def test_plan_rewrites_sdk_items_as_track_items_with_the_sign_in_target() -> None:
    events = [
        {"name": "ss", "time": NOW, "session_id": "s", "user_id": "u1"},
        {
            "name": "p",
            "time": NOW,
            "session_id": "s",
            "data": {"pid": "sku", "c": "eur", "p": "9.99", "q": 2},
        },
        {"name": "inc", "time": NOW, "session_id": "s", "data": {"key": "visits", "value": 3}},
        {"name": "add", "time": NOW, "session_id": "s", "data": {"key": "tags", "value": "a"}},
    ]
    attributes = [{"user_id": "u1", "first_name": "Ana", "custom": {"plan": "pro"}}, {"gender": "zz"}]
    request = parse_sdk_request({"device_id": "d", "events": events, "attributes": attributes}, now=NOW)
    result = plan(request.events, request.attributes, device_id="d", app_id="app", now=NOW)
    [(_, target)] = result.sessions
    assert (target.kind, target.value, target.device_id, target.create) == ("external_id", "u1", "d", True)
    [purchase] = result.batch.purchases
    assert (purchase.price, purchase.currency, purchase.quantity, purchase.app_id) == (9.99, "EUR", 2, "app")
    assert purchase.target.kind == "device_id"
    first, increment, add = result.batch.attributes
    assert first.update.standard == {"first_name": "Ana"} and set(first.update.custom) == {"plan"}
    assert set(increment.update.custom) == {"visits"} and set(add.update.custom) == {"tags"}
    assert [(e.input_array, e.index) for e in result.batch.errors] == [("attributes", 1)]


@pytest.mark.parametrize(
    "text",
    ["ftp://a.b", "https://a.b/path", "a.b", "https://user@a.b", "https://a.b?x", f"https://{'o' * 600}.com"],
)
def test_origins_must_be_scheme_host_and_port(text: str) -> None:
    with pytest.raises(InvalidApp):
        parse_origin(text)
    assert parse_origin("HTTPS://Shop.Example:8443/") == "https://shop.example:8443"
