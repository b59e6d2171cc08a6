"""Validating `/users/delete` requests: every identifier kind, the limit across kinds, prioritization."""

from __future__ import annotations

from typing import Any

import pytest

from cohorthub.identity.errors import InvalidUserRequest
from cohorthub.identity.lookups import ContactMatch, parse_delete
from cohorthub.identity.model import UserAlias


def test_every_kind_is_parsed_and_emails_are_lower_cased() -> None:
    request = parse_delete(
        {
            "external_ids": ["u1"],
            "user_aliases": [{"alias_name": "n", "alias_label": "l"}],
            "braze_ids": ["b1"],
            "email_addresses": [
                " Ann@X.io ",
                {"email": "BOB@x.io", "prioritization": ["unidentified", "most_recently_updated"]},
                {"email": "cy@x.io"},
            ],
            "phone_numbers": ["+15551234", {"phone": "+15559999", "prioritization": ["identified"]}],
        }
    )
    assert request.ids.external_ids == ["u1"]
    assert request.ids.aliases == [UserAlias("l", "n")]
    assert request.ids.braze_ids == ["b1"]
    assert request.contacts == [
        ContactMatch("email", "ann@x.io"),
        ContactMatch("email", "bob@x.io", ("unidentified", "most_recently_updated")),
        ContactMatch("email", "cy@x.io"),
        ContactMatch("phone", "+15551234"),
        ContactMatch("phone", "+15559999", ("identified",)),
    ]


def test_email_or_phone_alone_is_enough() -> None:
    assert parse_delete({"email_addresses": ["a@x.io"]}).contacts == [ContactMatch("email", "a@x.io")]
    assert parse_delete({"phone_numbers": ["+1555"]}).contacts == [ContactMatch("phone", "+1555")]


@pytest.mark.parametrize(
    "body",
    [
        {"external_ids": ["a"] * 20, "email_addresses": ["a@x.io"] * 20, "phone_numbers": ["+1"] * 11},
        {"email_addresses": ["a@x.io"] * 26, "phone_numbers": ["+1"] * 25},
        {"braze_ids": ["b"] * 50, "phone_numbers": ["+1"]},
    ],
)
def test_fifty_identifiers_across_all_kinds(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidUserRequest, match="Too many identifiers: 51 given, at most 50 per request"):
        parse_delete(body)


def test_fifty_identifiers_are_accepted() -> None:
    request = parse_delete({"external_ids": ["a"] * 25, "email_addresses": ["a@x.io"] * 25})
    assert len(request.ids.external_ids) + len(request.contacts) == 50


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"email_addresses": "a@x.io"}, "'email_addresses' must be an array"),
        ({"phone_numbers": [{"phone": "+1"}] * 51}, "Too many phone_numbers: 51 given, at most 50"),
        ({"email_addresses": ["a@x.io", "nope"]}, r"email_addresses\[1\]: email is not an email address"),
        ({"email_addresses": [5]}, r"email_addresses\[0\]: email must be a string"),
        (
            {"email_addresses": [{"prioritization": ["identified"]}]},
            r"email_addresses\[0\]: email is required",
        ),
        (
            {"email_addresses": [{"email": "a@x.io", "prioritization": []}]},
            "prioritization must be a non-empty",
        ),
        ({"email_addresses": [{"email": "a@x.io", "prioritization": ["newest"]}]}, "unknown prioritization"),
        (
            {"phone_numbers": [{"phone": "+1", "prioritization": ["identified", "unidentified"]}]},
            r"phone_numbers\[0\]: prioritization may hold identified or unidentified, not both",
        ),
        ({"phone_numbers": [""]}, r"phone_numbers\[0\]: phone must not be empty"),
        ({"email_addresses": [], "phone_numbers": []}, "One of external_ids, user_aliases, braze_ids"),
    ],
)
def test_bad_requests_name_the_problem(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidUserRequest, match=message):
        parse_delete(body)
