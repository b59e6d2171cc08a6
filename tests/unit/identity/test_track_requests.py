"""Validation of /users/track requests: identifiers, limits, fatal and non-fatal errors."""

from __future__ import annotations

from typing import Any

import pytest

from cohorthub.identity.errors import InvalidUserRequest
from cohorthub.identity.model import UserAlias
from cohorthub.identity.requests import parse_target, parse_track

NOW = 1_800_000_000.0
EVENT = {"external_id": "u1", "name": "played", "time": "2024-01-02T03:04:05Z"}


def test_seventy_six_events_is_fatal() -> None:
    with pytest.raises(InvalidUserRequest, match="Too many events: 76 given, at most 75 per request"):
        parse_track({"events": [EVENT] * 76}, now=NOW)


def test_seventy_five_of_each_array_are_accepted() -> None:
    purchase = {"external_id": "u", "product_id": "p", "currency": "USD", "price": 1, "time": "2024-01-01"}
    batch = parse_track(
        {"attributes": [{"external_id": "u"}] * 75, "events": [EVENT] * 75, "purchases": [purchase] * 75},
        now=NOW,
    )
    assert (len(batch.attributes), len(batch.events), len(batch.purchases)) == (75, 75, 75)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "Request body must be a JSON object"),
        ({"events": {"name": "x"}}, "'events' must be an array of objects"),
        ({}, "at least one of attributes, events or purchases"),
        ({"attributes": [], "events": [], "purchases": []}, "at least one of"),
        ({"events": [{"name": "x"}]}, "No valid objects in the request"),
        ({"attributes": ["u1"]}, "No valid objects in the request"),
    ],
)
def test_fatal_problems(body: Any, message: str) -> None:
    with pytest.raises(InvalidUserRequest, match=message):
        parse_track(body, now=NOW)


def test_bad_objects_are_non_fatal_and_name_their_index() -> None:
    batch = parse_track(
        {
            "events": [
                EVENT,
                {"external_id": "u1", "name": "x", "time": "yesterday"},
                {"name": "x", "time": "2024-01-01T00:00:00Z"},
            ],
            "purchases": [{"external_id": "u1", "product_id": "p", "currency": "DOLLARS", "price": 1}],
        },
        now=NOW,
    )
    assert len(batch.events) == 1
    assert [(e.input_array, e.index) for e in batch.errors] == [
        ("events", 1),
        ("events", 2),
        ("purchases", 0),
    ]
    assert "time must be an ISO-8601" in batch.errors[0].type
    assert "one of external_id, user_alias" in batch.errors[1].type
    assert "currency must be a three-letter" in batch.errors[2].type


def test_future_event_times_become_now() -> None:
    batch = parse_track({"events": [{**EVENT, "time": "2999-01-01T00:00:00Z"}]}, now=NOW)
    assert batch.events[0].time == NOW


@pytest.mark.parametrize(
    ("obj", "kind", "value", "create"),
    [
        ({"external_id": "u", "email": "a@b.c"}, "external_id", "u", True),
        ({"braze_id": "b", "user_alias": {"alias_name": "n", "alias_label": "l"}}, "braze_id", "b", False),
        ({"user_alias": {"alias_name": "n", "alias_label": "l"}}, "user_alias", UserAlias("l", "n"), False),
        (
            {"user_alias": {"alias_name": "n", "alias_label": "l"}, "_update_existing_only": False},
            "user_alias",
            UserAlias("l", "n"),
            True,
        ),
        ({"email": "A@B.C", "phone": "+1"}, "email", "a@b.c", True),
        ({"phone": "+15551234"}, "phone", "+15551234", True),
        ({"device_id": "d", "_update_existing_only": True}, "device_id", "d", False),
        ({"external_id": "u", "_update_existing_only": True}, "external_id", "u", False),
    ],
)
def test_identifier_precedence_and_update_only_defaults(
    obj: dict[str, Any], kind: str, value: object, create: bool
) -> None:
    target = parse_target(obj)
    assert (target.kind, target.value, target.create) == (kind, value, create)


def test_external_id_with_device_id_is_a_sign_in() -> None:
    target = parse_target({"external_id": "u", "device_id": "d"})
    assert (target.kind, target.value, target.device_id) == ("external_id", "u", "d")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"external_id": "x" * 10_000}, "external_id is longer than 512 characters"),
        ({"external_id": 12}, "external_id must be a string"),
        ({"external_id": " "}, "external_id must not be empty"),
        ({"user_alias": {"alias_name": "n"}}, "user_alias.alias_label must be a string"),
        ({"external_id": "u", "_update_existing_only": "no"}, "_update_existing_only must be true or false"),
    ],
)
def test_bad_identifiers(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_target(obj)


@pytest.mark.parametrize("price", [10**309, -(10**309)])
def test_a_price_past_the_float_range_is_an_error_of_its_object(price: int) -> None:
    purchase = {"external_id": "u", "product_id": "p", "currency": "USD", "price": price, "time": "2024"}
    with pytest.raises(InvalidUserRequest, match="No valid objects") as caught:
        parse_track({"purchases": [purchase]}, now=NOW)
    assert caught.value.errors == ["purchases[0]: price must be a number"]
