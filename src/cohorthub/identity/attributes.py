"""Profile attributes: standard fields and typed custom attributes, with their operations (pure).

Custom attribute values are stored as JSON: strings, numbers, booleans, arrays of those, and
times as `{"$time": "<ISO-8601 UTC>"}`. A string that is an ISO-8601 date-time is a time, as
Braze types it. `{"inc": n}` adds to a number, `{"add": [...]}`/`{"remove": [...]}` edit an array,
and null removes the attribute.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from datetime import date
from functools import cache, lru_cache
from typing import Any

import msgspec

from cohorthub.identity.model import STANDARD_FIELDS, iso_time, parse_time, text_problem

#: Keys of an attributes object that are identifiers or flags, never attributes.
CONTROL_KEYS = frozenset(
    {"external_id", "user_alias", "braze_id", "device_id", "_update_existing_only", "push_token_import"}
)
#: Braze profile fields cohorthub accepts and ignores (documented in docs/users-api.md).
IGNORED_FIELDS = frozenset(
    {
        "push_subscribe",
        "push_tokens",
        "image_url",
        "current_location",
        "date_of_first_session",
        "date_of_last_session",
        "facebook",
        "twitter",
        "subscription_groups",
        "marked_email_as_spam_at",
        "email_open_tracking_disabled",
        "email_click_tracking_disabled",
    }
)
GENDERS = {
    "m": "M",
    "f": "F",
    "o": "O",
    "n": "N",
    "p": "P",
    "male": "M",
    "female": "F",
    "other": "O",
    "not_applicable": "N",
    "prefer_not_to_say": "P",
}
EMAIL_SUBSCRIBE = frozenset({"opted_in", "subscribed", "unsubscribed"})
MAX_KEY_LENGTH = 255
MAX_STRING_LENGTH = 255
MAX_ARRAY_LENGTH = 100
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")

Scalar = str | int | float | bool


class SetValue(msgspec.Struct, frozen=True):
    """Replace the attribute (None removes it)."""

    value: Any


class Increment(msgspec.Struct, frozen=True):
    """Add `by` to a number (a missing attribute counts as 0)."""

    by: int | float


class EditArray(msgspec.Struct, frozen=True):
    """Append `add` (moving present values to the end) and drop `remove`."""

    add: tuple[Any, ...]
    remove: tuple[Any, ...]


CustomOp = SetValue | Increment | EditArray


class AttributeUpdate(msgspec.Struct, frozen=True):
    """The changes one attributes object asks for."""

    standard: dict[str, str | None]
    custom: dict[str, CustomOp]

    def __bool__(self) -> bool:
        return bool(self.standard or self.custom)


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def parse_standard(name: str, value: object) -> str | None:
    """A standard field's stored value; ValueError naming the rule when it is invalid."""
    if value is None:
        return None
    if problem := text_problem(value, what=name, max_length=STANDARD_FIELDS[name]):
        raise ValueError(problem)
    assert isinstance(value, str)
    text = value.strip()
    if name == "email":
        if "@" not in text:
            raise ValueError("email is not an email address")
        return text.lower()
    if name == "gender":
        if text.lower() not in GENDERS:
            raise ValueError("gender must be one of M, F, O, N, P")
        return GENDERS[text.lower()]
    if name == "email_subscribe" and text not in EMAIL_SUBSCRIBE:
        raise ValueError("email_subscribe must be one of opted_in, subscribed, unsubscribed")
    if name == "dob":
        try:
            date.fromisoformat(text)
        except ValueError:
            raise ValueError("dob must be a date in the form YYYY-MM-DD") from None
    if name == "time_zone" and text not in _time_zones():
        raise ValueError("time_zone must be an IANA time zone name such as America/New_York")
    return text


def parse_scalar(value: object, where: str) -> Any:
    """A custom attribute's single value as stored (an ISO date-time string becomes a time)."""
    return _scalar(value, where)


def _scalar(value: object, where: str) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number")
        return value
    if isinstance(value, str):
        if problem := text_problem(value, what=where, max_length=MAX_STRING_LENGTH, allow_empty=True):
            raise ValueError(problem)
        if _DATE_TIME.match(value):
            try:
                return {"$time": iso_time(parse_time(value))}
            except ValueError as exc:  # a date-time out of range (past year 9999 in UTC)
                raise ValueError(f"{where}: {exc}") from None
        return value
    if isinstance(value, dict) and set(value) == {"$time"}:
        try:
            return {"$time": iso_time(parse_time(value["$time"]))}
        except ValueError:
            raise ValueError(f"{where}: $time must be an ISO-8601 date-time string") from None
    raise ValueError(f"{where} must be a string, number, boolean or time")


def _array(value: list[Any], where: str) -> list[Any]:
    items = [_scalar(v, f"{where}[]") for v in value]
    unique = _unique(items)
    if len(unique) > MAX_ARRAY_LENGTH:
        raise ValueError(f"{where} holds more than {MAX_ARRAY_LENGTH} values")
    return unique


def _unique(items: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def check_custom_name(key: str) -> None:
    """ValueError naming the rule when `key` cannot name a custom attribute."""
    if problem := _custom_name_problem(key):
        raise ValueError(problem)


@lru_cache(maxsize=4096)  # a request names the same few attributes in each of its objects
def _custom_name_problem(key: str) -> str | None:
    if problem := text_problem(key, what="custom attribute name", max_length=MAX_KEY_LENGTH):
        return problem
    if key.startswith("$"):
        return f"custom attribute name {key!r} must not start with $"
    return None


def parse_custom(key: str, value: object) -> CustomOp:
    """The operation one custom attribute asks for; ValueError naming the rule when it is invalid."""
    check_custom_name(key)
    if value is None:
        return SetValue(None)
    if isinstance(value, list):
        return SetValue(_array(value, key))
    if isinstance(value, dict) and value and set(value) <= {"inc"}:
        by = value["inc"]
        if isinstance(by, bool) or not isinstance(by, int | float) or not _finite(by):
            raise ValueError(f"{key}: inc must be a number")
        return Increment(by)
    if isinstance(value, dict) and value and set(value) <= {"add", "remove"}:
        add, remove = value.get("add", []), value.get("remove", [])
        if not isinstance(add, list) or not isinstance(remove, list):
            raise ValueError(f"{key}: add and remove must be arrays")
        return EditArray(tuple(_array(add, key)), tuple(_array(remove, key)))
    return SetValue(_scalar(value, key))


def parse_attributes(obj: dict[str, Any]) -> AttributeUpdate:
    """Split an attributes object into standard fields and custom operations."""
    standard: dict[str, str | None] = {}
    custom: dict[str, CustomOp] = {}
    for key, value in obj.items():
        if key in CONTROL_KEYS or key in IGNORED_FIELDS:
            continue
        if key in STANDARD_FIELDS:
            standard[key] = parse_standard(key, value)
        else:
            custom[key] = parse_custom(key, value)
    return AttributeUpdate(standard, custom)


def _finite(number: int | float) -> bool:
    """Whether `number` is not NaN or infinite (any integer is finite, even past the float range)."""
    return isinstance(number, int) or math.isfinite(number)


def _sum(key: str, base: int | float, by: int | float) -> int | float:
    """`base + by`; ValueError when it leaves the float range (JSON would store it as null)."""
    try:
        total = base + by
    except OverflowError:  # an integer past the float range plus a float
        total = math.inf
    if not _finite(total):
        raise ValueError(f"{key}: inc takes the number past the largest a float can hold")
    return total


def apply_custom(current: dict[str, Any], ops: dict[str, CustomOp]) -> dict[str, Any]:
    """`current` with `ops` applied (a new dict); ValueError when an op does not fit the stored type."""
    result = dict(current)
    for key, op in ops.items():
        if type(op) is SetValue and op.value is not None:  # the common case, first
            result[key] = op.value
        elif isinstance(op, SetValue):
            if op.value is None:
                result.pop(key, None)
            else:
                result[key] = op.value
        elif isinstance(op, Increment):
            base = result.get(key, 0)
            if isinstance(base, bool) or not isinstance(base, int | float):
                raise ValueError(f"{key}: inc needs a number attribute")
            result[key] = _sum(key, base, op.by)
        else:
            base = result.get(key, [])
            if not isinstance(base, list):
                raise ValueError(f"{key}: add and remove need an array attribute")
            kept = [v for v in base if v not in op.add and v not in op.remove]
            result[key] = [*kept, *(v for v in op.add if v not in op.remove)][-MAX_ARRAY_LENGTH:]
    return result
