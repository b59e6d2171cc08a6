"""Parsing `/users/identify`, `/users/alias/new`, `/users/delete` and `/users/export/ids` (pure).

These requests are all or nothing: any bad object is a 400 that names it, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from cohorthub.identity.attributes import parse_standard
from cohorthub.identity.errors import InvalidUserRequest
from cohorthub.identity.model import UserAlias
from cohorthub.identity.requests import parse_alias, parse_identifier

#: Objects per array of /users/identify and /users/alias/new; identifiers per /users/delete
#: and per /users/export/ids.
MAX_BATCH = 50
PRIORITIES = ("identified", "unidentified", "most_recently_updated", "least_recently_updated")
#: Export fields cohorthub fills in.
EXPORT_FIELDS = (
    "external_id",
    "braze_id",
    "user_aliases",
    "created_at",
    "first_name",
    "last_name",
    "email",
    "phone",
    "dob",
    "gender",
    "country",
    "home_city",
    "language",
    "time_zone",
    "email_subscribe",
    "custom_attributes",
    "custom_events",
    "purchases",
    "devices",
    "cohorts",
)
#: Braze export fields cohorthub accepts but has no data for (left out of each user, as Braze does).
EMPTY_EXPORT_FIELDS = frozenset(
    {
        "apps",
        "attributed_campaign",
        "attributed_source",
        "attributed_adgroup",
        "attributed_ad",
        "push_subscribe",
        "push_tokens",
        "random_bucket",
        "total_revenue",
        "uninstalled_at",
        "last_coordinates",
        "campaigns_received",
        "canvases_received",
        "cards_clicked",
        "push_opted_in_at",
        "push_unsubscribed_at",
        "email_opted_in_at",
        "email_unsubscribed_at",
    }
)

T = TypeVar("T")
IdentifyKind = Literal["user_alias", "email", "phone"]
ContactKind = Literal["email", "phone"]


@dataclass(frozen=True, slots=True)
class IdentifyItem:
    """Identify the profile that `value` names as `external_id`."""

    external_id: str
    kind: IdentifyKind
    value: str | UserAlias
    prioritization: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NewAlias:
    """Add `alias` to the user `external_id`, or create an alias-only user when it is None."""

    alias: UserAlias
    external_id: str | None


@dataclass(slots=True)
class UserIds:
    """Identifiers naming users to delete or export."""

    external_ids: list[str] = field(default_factory=list)
    aliases: list[UserAlias] = field(default_factory=list)
    braze_ids: list[str] = field(default_factory=list)
    device_ids: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ContactMatch:
    """The user whose email or phone is `value`; `prioritization` picks one when several have it."""

    kind: ContactKind
    value: str
    prioritization: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    """Users to delete: by identifier, and by email address or phone number."""

    ids: UserIds
    contacts: list[ContactMatch]


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """Who to export and which fields (None = every field)."""

    ids: UserIds
    fields: frozenset[str] | None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidUserRequest("Request body must be a JSON object")
    return body


def _array(body: dict[str, Any], name: str, limit: int = MAX_BATCH) -> list[Any]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidUserRequest(f"'{name}' must be an array")
    if len(value) > limit:
        raise InvalidUserRequest(f"Too many {name}: {len(value)} given, at most {limit} per request")
    return value


def _each(name: str, items: list[Any], parse: Callable[[Any], T]) -> list[T]:
    parsed: list[T] = []
    errors: list[str] = []
    for index, item in enumerate(items):
        try:
            parsed.append(parse(item))
        except ValueError as exc:
            errors.append(f"{name}[{index}]: {exc}")
    if errors:
        raise InvalidUserRequest(f"Invalid {name}: {errors[0]}", errors=errors)
    return parsed


def _prioritization(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"prioritization must be a non-empty array of: {', '.join(PRIORITIES)}")
    if unknown := [v for v in value if v not in PRIORITIES]:
        raise ValueError(f"unknown prioritization {unknown[0]!r}; use {', '.join(PRIORITIES)}")
    if "identified" in value and "unidentified" in value:
        raise ValueError("prioritization may hold identified or unidentified, not both")
    return tuple(value)


def _identify_item(kind: IdentifyKind) -> Callable[[Any], IdentifyItem]:
    def parse(obj: Any) -> IdentifyItem:
        if not isinstance(obj, dict):
            raise ValueError("must be an object")
        external_id = parse_identifier(obj.get("external_id"), "external_id")
        if kind == "user_alias":
            return IdentifyItem(external_id, kind, parse_alias(obj.get("user_alias")))
        value = parse_standard(kind, obj.get(kind))
        if value is None:
            raise ValueError(f"{kind} is required")
        return IdentifyItem(external_id, kind, value, _prioritization(obj.get("prioritization")))

    return parse


def parse_identify(body: Any) -> list[IdentifyItem]:
    """`aliases_to_identify`, `emails_to_identify`, `phone_numbers_to_identify` (each ≤ 50)."""
    body = _object(body)
    items = [
        *_each("aliases_to_identify", _array(body, "aliases_to_identify"), _identify_item("user_alias")),
        *_each("emails_to_identify", _array(body, "emails_to_identify"), _identify_item("email")),
        *_each(
            "phone_numbers_to_identify", _array(body, "phone_numbers_to_identify"), _identify_item("phone")
        ),
    ]
    if not items:
        raise InvalidUserRequest(
            "One of aliases_to_identify, emails_to_identify or phone_numbers_to_identify is required"
        )
    return items


def _new_alias(obj: Any) -> NewAlias:
    if not isinstance(obj, dict):
        raise ValueError("must be an object")
    external_id = obj.get("external_id")
    return NewAlias(
        parse_alias(obj, "user alias"),
        None if external_id is None else parse_identifier(external_id, "external_id"),
    )


def parse_new_aliases(body: Any) -> list[NewAlias]:
    """`user_aliases` (≤ 50), each with `alias_name`, `alias_label` and an optional `external_id`."""
    items = _each("user_aliases", _array(_object(body), "user_aliases"), _new_alias)
    if not items:
        raise InvalidUserRequest("'user_aliases' must hold at least one alias")
    return items


def _identifier(what: str) -> Callable[[Any], str]:
    return lambda value: parse_identifier(value, what)


def _ids(body: dict[str, Any], arrays: dict[str, str]) -> UserIds:
    ids = UserIds()
    total = 0
    for name, attr in arrays.items():
        values = _array(body, name)
        total += len(values)
        if name == "user_aliases":
            ids.aliases = _each(name, values, parse_alias)
        else:
            setattr(ids, attr, _each(name, values, _identifier(name[:-1])))
    if total > MAX_BATCH:
        raise InvalidUserRequest(f"Too many identifiers: {total} given, at most {MAX_BATCH} per request")
    return ids


def _contact(kind: ContactKind) -> Callable[[Any], ContactMatch]:
    def parse(item: Any) -> ContactMatch:
        prioritization: tuple[str, ...] = ()
        if isinstance(item, dict):
            if item.get("prioritization") is not None:
                prioritization = _prioritization(item["prioritization"])
            item = item.get(kind)
        value = parse_standard(kind, item)
        if value is None:
            raise ValueError(f"{kind} is required")
        return ContactMatch(kind, value, prioritization)

    return parse


DELETE_ARRAYS = ("external_ids", "user_aliases", "braze_ids", "email_addresses", "phone_numbers")


def parse_delete(body: Any) -> DeleteRequest:
    """`external_ids`, `user_aliases`, `braze_ids`, `email_addresses`, `phone_numbers` (≤ 50 in all)."""
    body = _object(body)
    total = sum(len(_array(body, name)) for name in DELETE_ARRAYS)
    if total > MAX_BATCH:
        raise InvalidUserRequest(f"Too many identifiers: {total} given, at most {MAX_BATCH} per request")
    ids = _ids(body, {"external_ids": "external_ids", "user_aliases": "aliases", "braze_ids": "braze_ids"})
    contacts = [
        *_each("email_addresses", _array(body, "email_addresses"), _contact("email")),
        *_each("phone_numbers", _array(body, "phone_numbers"), _contact("phone")),
    ]
    if not (ids.external_ids or ids.aliases or ids.braze_ids or contacts):
        raise InvalidUserRequest(
            "One of external_ids, user_aliases, braze_ids, email_addresses or phone_numbers is required"
        )
    return DeleteRequest(ids, contacts)


def _single(body: dict[str, Any], name: str, kind: str) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    try:
        if kind in ("email", "phone"):
            parsed = parse_standard(kind, value)
            return [parsed] if parsed else []
        return [parse_identifier(value, name)]
    except ValueError as exc:
        raise InvalidUserRequest(f"Invalid {name}: {exc}") from None


def _fields(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidUserRequest("'fields_to_export' must be an array of field names")
    if unknown := sorted({v for v in value if v not in EXPORT_FIELDS and v not in EMPTY_EXPORT_FIELDS}):
        raise InvalidUserRequest(
            f"Unknown fields_to_export: {', '.join(unknown)[:200]}",
            errors=[f"valid fields: {', '.join(EXPORT_FIELDS)}"],
        )
    return frozenset(value)


def parse_export(body: Any) -> ExportRequest:
    """`external_ids`/`user_aliases` (≤ 50) and/or one `device_id`, `braze_id`, `email_address`, `phone`."""
    body = _object(body)
    ids = _ids(body, {"external_ids": "external_ids", "user_aliases": "aliases"})
    ids.device_ids = _single(body, "device_id", "device_id")
    ids.braze_ids = _single(body, "braze_id", "braze_id")
    ids.emails = _single(body, "email_address", "email")
    ids.phones = _single(body, "phone", "phone")
    if not any((ids.external_ids, ids.aliases, ids.device_ids, ids.braze_ids, ids.emails, ids.phones)):
        raise InvalidUserRequest(
            "One of external_ids, user_aliases, device_id, braze_id, email_address or phone is required"
        )
    return ExportRequest(ids, _fields(body.get("fields_to_export")))
