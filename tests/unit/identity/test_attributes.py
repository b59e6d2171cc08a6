"""Attribute typing and operations."""

from __future__ import annotations

from typing import Any

import pytest

from cohorthub.identity.attributes import (
    EditArray,
    Increment,
    SetValue,
    apply_custom,
    parse_attributes,
    parse_custom,
    parse_standard,
)


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("email", " Ana@Example.COM ", "ana@example.com"),
        ("gender", "female", "F"),
        ("gender", "m", "M"),
        ("dob", "1988-02-14", "1988-02-14"),
        ("time_zone", "America/New_York", "America/New_York"),
        ("email_subscribe", "opted_in", "opted_in"),
        ("first_name", "Zoë 🚀", "Zoë 🚀"),
        ("country", None, None),
    ],
)
def test_standard_fields_are_normalized(name: str, value: object, stored: str | None) -> None:
    assert parse_standard(name, value) == stored


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("email", "not-an-address", "email is not an email address"),
        ("gender", "X", "gender must be one of M, F, O, N, P"),
        ("dob", "14/02/1988", "dob must be a date in the form YYYY-MM-DD"),
        ("time_zone", "Mars/Olympus", "time_zone must be an IANA time zone name"),
        ("email_subscribe", "yes", "email_subscribe must be one of"),
        ("first_name", 42, "first_name must be a string"),
        ("first_name", "x" * 257, "first_name is longer than 256 characters"),
        ("last_name", "a\x00b", "last_name must not contain NUL characters"),
    ],
)
def test_invalid_standard_fields_name_the_rule(name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_standard(name, value)


@pytest.mark.parametrize(
    ("value", "op"),
    [
        ("fruit", SetValue("fruit")),
        (26, SetValue(26)),
        (1.5, SetValue(1.5)),
        (True, SetValue(True)),
        (None, SetValue(None)),
        (["b", "a", "b"], SetValue(["b", "a"])),
        ("2024-01-02T03:04:05+01:00", SetValue({"$time": "2024-01-02T02:04:05.000Z"})),
        ({"$time": "2024-01-02"}, SetValue({"$time": "2024-01-02T00:00:00.000Z"})),
        ("2024-01-02", SetValue("2024-01-02")),
        ({"inc": -2}, Increment(-2)),
        ({"add": ["x"], "remove": ["y"]}, EditArray(("x",), ("y",))),
    ],
)
def test_custom_values_are_typed(value: object, op: object) -> None:
    assert parse_custom("attr", value) == op


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("$bad", 1, "must not start with \\$"),
        ("nested", {"a": 1}, "must be a string, number, boolean or time"),
        ("c", {"inc": "1"}, "inc must be a number"),
        ("c", {"add": "x"}, "add and remove must be arrays"),
        ("c", [[1]], "must be a string, number, boolean or time"),
        ("c", list(range(101)), "more than 100 values"),
        ("c", {"$time": "yesterday"}, "\\$time must be an ISO-8601"),
        ("c", "x" * 256, "longer than 255"),
        ("c", "9999-12-31T23:59:59-14:00", "^c: must be an ISO-8601 date-time"),  # past year 9999 in UTC
    ],
)
def test_invalid_custom_values_are_refused(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_custom(key, value)


def test_operations_apply_to_stored_values() -> None:
    current: dict[str, Any] = {"n": 2, "tags": ["a", "b", "c"], "gone": "x"}
    ops = {
        "n": Increment(3),
        "fresh": Increment(1),
        "tags": EditArray(add=("a", "d"), remove=("b",)),
        "gone": SetValue(None),
        "list": EditArray(add=("z",), remove=()),
    }
    assert apply_custom(current, ops) == {"n": 5, "fresh": 1, "tags": ["c", "a", "d"], "list": ["z"]}
    assert current["n"] == 2  # the input is not modified


@pytest.mark.parametrize(
    ("stored", "op"), [("text", Increment(1)), (True, Increment(1)), (3, EditArray(("a",), ()))]
)
def test_operations_that_do_not_fit_the_stored_type_fail(stored: object, op: Any) -> None:
    with pytest.raises(ValueError, match="need"):
        apply_custom({"k": stored}, {"k": op})


def test_an_increment_by_an_integer_past_the_float_range_is_a_number() -> None:
    assert parse_custom("c", {"inc": 10**309}) == Increment(10**309)
    assert apply_custom({"c": 1}, {"c": Increment(10**309)}) == {"c": 10**309 + 1}


@pytest.mark.parametrize(
    ("stored", "by"), [(1e308, 1e308), (-1e308, -1e308), (10**309, 1.5), (1.5, 10**309), (-(10**309), -1.5)]
)
def test_an_increment_past_the_float_range_fails_instead_of_storing_null(stored: object, by: Any) -> None:
    with pytest.raises(ValueError, match="c: inc takes the number past"):
        apply_custom({"c": stored}, {"c": Increment(by)})


def test_attributes_object_splits_fields_from_custom_attributes() -> None:
    update = parse_attributes(
        {
            "external_id": "u1",
            "_update_existing_only": False,
            "push_subscribe": "opted_in",
            "first_name": "Jon",
            "email": None,
            "plan": "pro",
        }
    )
    assert update.standard == {"first_name": "Jon", "email": None}
    assert update.custom == {"plan": SetValue("pro")}
