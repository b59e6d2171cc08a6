"""Parsing and validating `/users/track` requests (pure).

Fatal problems (a body that is not an object, an array that is not an array or holds more than
75 objects) raise `InvalidUserRequest`; a bad object becomes a non-fatal error naming its array
and index, and the other objects are still processed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from cohorthub.identity.attributes import AttributeUpdate, parse_attributes, parse_standard
from cohorthub.identity.errors import InvalidUserRequest
from cohorthub.identity.model import UserAlias, is_finite, parse_time, text_problem

#: Objects per array of one /users/track request (the 75-per-array rule, applied to each array).
MAX_TRACK_OBJECTS = 75
MAX_PROPERTIES_BYTES = 50 * 1024
ARRAYS = ("attributes", "events", "purchases")
IDENTIFIER_HINT = "one of external_id, user_alias, braze_id, email, phone or device_id is required"

RefKind = Literal["external_id", "braze_id", "user_alias", "email", "phone", "device_id"]
#: Kinds that only update an existing user unless `_update_existing_only` is false.
UPDATE_ONLY_BY_DEFAULT = frozenset({"user_alias", "braze_id"})


class Target(msgspec.Struct, frozen=True):
    """Which user an object is about; `device_id` beside an external id is the sign-in moment.

    A Struct (like the other per-object values of a request): built several times faster than a
    frozen dataclass, and a request builds hundreds.
    """

    kind: RefKind
    value: str | UserAlias
    create: bool
    device_id: str | None = None


class AttributesItem(msgspec.Struct, frozen=True):
    """One attributes object."""

    index: int
    target: Target
    update: AttributeUpdate


class EventItem(msgspec.Struct, frozen=True):
    """One custom event."""

    index: int
    target: Target
    name: str
    time: float
    properties: dict[str, Any]
    app_id: str | None
    #: Extra Currents properties of the sending device (`platform`, `os_version`, `device_model`).
    context: Mapping[str, str] = msgspec.field(default_factory=dict)


class PurchaseItem(msgspec.Struct, frozen=True):
    """One purchase."""

    index: int
    target: Target
    product_id: str
    currency: str
    price: float
    quantity: int
    time: float
    properties: dict[str, Any]
    app_id: str | None
    context: Mapping[str, str] = msgspec.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ItemError:
    """A non-fatal error: the object at `input_array[index]` was skipped."""

    input_array: str
    index: int
    type: str

    def wire(self) -> dict[str, Any]:
        """Braze's non-fatal error object."""
        return {"type": self.type, "input_array": self.input_array, "index": self.index}


@dataclass(slots=True)
class TrackBatch:
    """A validated request: the usable objects and the errors of the others."""

    attributes: list[AttributesItem]
    events: list[EventItem]
    purchases: list[PurchaseItem]
    errors: list[ItemError]


def parse_alias(value: object, what: str = "user_alias") -> UserAlias:
    """A user alias object; ValueError when it is not one."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object with alias_name and alias_label")
    for key in ("alias_name", "alias_label"):
        if problem := text_problem(value.get(key), what=f"{what}.{key}"):
            raise ValueError(problem)
    return UserAlias(label=value["alias_label"], name=value["alias_name"])


def parse_identifier(value: object, what: str) -> str:
    """An identifier string; ValueError when it is not one."""
    if problem := text_problem(value, what=what):
        raise ValueError(problem)
    assert isinstance(value, str)
    return value


def parse_target(obj: dict[str, Any]) -> Target:
    """The user an object names; precedence: external_id, braze_id, user_alias, email, phone, device_id."""
    kind: RefKind
    value: str | UserAlias
    device_id = None
    if obj.get("external_id") is not None:
        kind, value = "external_id", parse_identifier(obj["external_id"], "external_id")
        if obj.get("device_id") is not None:
            device_id = parse_identifier(obj["device_id"], "device_id")
    elif obj.get("braze_id") is not None:
        kind, value = "braze_id", parse_identifier(obj["braze_id"], "braze_id")
    elif obj.get("user_alias") is not None:
        kind, value = "user_alias", parse_alias(obj["user_alias"])
    elif obj.get("email") is not None:
        kind, value = "email", parse_standard("email", obj["email"]) or ""
    elif obj.get("phone") is not None:
        kind, value = "phone", parse_standard("phone", obj["phone"]) or ""
    elif obj.get("device_id") is not None:
        kind, value = "device_id", parse_identifier(obj["device_id"], "device_id")
    else:
        raise ValueError(IDENTIFIER_HINT)
    flag = obj.get("_update_existing_only", kind in UPDATE_ONLY_BY_DEFAULT)
    if not isinstance(flag, bool):
        raise ValueError("_update_existing_only must be true or false")
    return Target(kind=kind, value=value, create=not flag, device_id=device_id)


def _properties(obj: dict[str, Any]) -> dict[str, Any]:
    props = obj.get("properties")
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise ValueError("properties must be an object")
    if len(msgspec.json.encode(props)) > MAX_PROPERTIES_BYTES:
        raise ValueError(f"properties are larger than {MAX_PROPERTIES_BYTES} bytes")
    return props


def _app_id(obj: dict[str, Any]) -> str | None:
    value = obj.get("app_id")
    return None if value is None else parse_identifier(value, "app_id")[:64]


def _time(obj: dict[str, Any], now: float) -> float:
    try:
        return parse_time(obj.get("time"), now=now)
    except ValueError as exc:
        raise ValueError(f"time {exc}") from None


def parse_event(index: int, obj: dict[str, Any], now: float) -> EventItem:
    """One event object."""
    if problem := text_problem(obj.get("name"), what="name", max_length=255):
        raise ValueError(problem)
    return EventItem(index, parse_target(obj), obj["name"], _time(obj, now), _properties(obj), _app_id(obj))


def parse_purchase(index: int, obj: dict[str, Any], now: float) -> PurchaseItem:
    """One purchase object."""
    if problem := text_problem(obj.get("product_id"), what="product_id", max_length=255):
        raise ValueError(problem)
    currency = obj.get("currency")
    if (
        not isinstance(currency, str)
        or len(currency) != 3
        or not currency.isascii()
        or not currency.isalpha()
    ):
        raise ValueError("currency must be a three-letter ISO 4217 code such as USD")
    price = obj.get("price")
    if isinstance(price, bool) or not isinstance(price, int | float) or not is_finite(price):
        raise ValueError("price must be a number")
    quantity = obj.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 100:
        raise ValueError("quantity must be an integer from 1 to 100")
    return PurchaseItem(
        index=index,
        target=parse_target(obj),
        product_id=obj["product_id"],
        currency=currency.upper(),
        price=float(price),
        quantity=quantity,
        time=_time(obj, now),
        properties=_properties(obj),
        app_id=_app_id(obj),
    )


def _arrays(body: Any) -> dict[str, list[Any]]:
    if not isinstance(body, dict):
        raise InvalidUserRequest("Request body must be a JSON object")
    arrays: dict[str, list[Any]] = {}
    for name in ARRAYS:
        value = body.get(name)
        if value is None:
            value = []
        if not isinstance(value, list):
            raise InvalidUserRequest(f"'{name}' must be an array of objects")
        if len(value) > MAX_TRACK_OBJECTS:
            raise InvalidUserRequest(
                f"Too many {name}: {len(value)} given, at most {MAX_TRACK_OBJECTS} per request",
                errors=[f"'{name}' holds {len(value)} objects; the limit is {MAX_TRACK_OBJECTS}"],
            )
        arrays[name] = value
    if not any(arrays.values()):
        raise InvalidUserRequest("Request must include at least one of attributes, events or purchases")
    return arrays


def parse_track(body: Any, *, now: float) -> TrackBatch:
    """Validate a whole request; 400 when nothing in it is usable."""
    batch = TrackBatch([], [], [], [])
    for name, objects in _arrays(body).items():
        for index, obj in enumerate(objects):
            try:
                if not isinstance(obj, dict):
                    raise ValueError(f"each of '{name}' must be an object")
                if name == "attributes":
                    batch.attributes.append(AttributesItem(index, parse_target(obj), parse_attributes(obj)))
                elif name == "events":
                    batch.events.append(parse_event(index, obj, now))
                else:
                    batch.purchases.append(parse_purchase(index, obj, now))
            except ValueError as exc:
                batch.errors.append(ItemError(name, index, str(exc)))
    if batch.errors and not (batch.attributes or batch.events or batch.purchases):
        raise InvalidUserRequest(
            "No valid objects in the request",
            errors=[f"{e.input_array}[{e.index}]: {e.type}" for e in batch.errors],
        )
    return batch
