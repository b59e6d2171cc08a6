"""SDK events and attributes as `/users/track` items (pure), and origin parsing.

Every SDK item is rewritten into the object `/users/track` would receive (`external_id` plus
`device_id` once the SDK has a user, else `device_id` alone) and parsed by the identity
parsers, so both doors share one set of rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cohorthub.apps.errors import InvalidApp
from cohorthub.apps.model import ATTRIBUTE_OPS, CUSTOM_EVENT, PURCHASE, SESSION_END, SESSION_START, SdkEvent
from cohorthub.identity.attributes import parse_attributes
from cohorthub.identity.model import iso_time
from cohorthub.identity.requests import (
    AttributesItem,
    ItemError,
    Target,
    TrackBatch,
    parse_event,
    parse_purchase,
    parse_target,
)

#: Longest page origin an app's workspace may allow (`sdk_origins.origin`).
MAX_ORIGIN = 512


@dataclass(slots=True)
class Plan:
    """The track batch, and each session event with the user it is about."""

    batch: TrackBatch = field(default_factory=lambda: TrackBatch([], [], [], []))
    sessions: list[tuple[SdkEvent, Target]] = field(default_factory=list)


def _ids(user_id: str | None, device_id: str) -> dict[str, Any]:
    return {"external_id": user_id, "device_id": device_id} if user_id else {"device_id": device_id}


def _attribute_op(event: SdkEvent) -> dict[str, Any]:
    key, value, op = event.data["key"], event.data.get("value"), ATTRIBUTE_OPS[event.code]
    if op == "inc":
        return {key: {"inc": 1 if value is None else value}}
    if op in ("add", "remove"):
        return {key: {op: value if isinstance(value, list) else [value]}}
    return {key: value}


def _purchase(event: SdkEvent, ids: dict[str, Any], app_id: str, now: float) -> dict[str, Any]:
    data = event.data
    price = data.get("p")
    return {
        **ids,
        "product_id": data["pid"],
        "currency": data.get("c", "USD"),
        "price": float(price) if isinstance(price, str) else price,
        "quantity": data.get("q", 1),
        "time": iso_time(event.time),
        "properties": data.get("pr") or {},
        "app_id": app_id,
    }


def _add_event(plan: Plan, index: int, event: SdkEvent, device_id: str, app_id: str, now: float) -> None:
    ids = _ids(event.user_id, device_id)
    batch = plan.batch
    if event.code in (SESSION_START, SESSION_END):
        plan.sessions.append((event, parse_target(ids)))
    elif event.code == CUSTOM_EVENT:
        obj = {**ids, "name": event.data["n"], "time": iso_time(event.time), "app_id": app_id}
        batch.events.append(parse_event(index, obj | {"properties": event.data.get("p") or {}}, now))
    elif event.code == PURCHASE:
        batch.purchases.append(parse_purchase(index, _purchase(event, ids, app_id, now), now))
    else:
        batch.attributes.append(
            AttributesItem(index, parse_target(ids), parse_attributes(_attribute_op(event)))
        )


def plan(
    events: list[SdkEvent],
    attributes: list[tuple[str | None, dict[str, Any]]],
    *,
    device_id: str,
    app_id: str,
    now: float,
) -> Plan:
    """Attributes first (as the SDK queued them), then events in order; bad items become errors."""
    result = Plan()
    for index, (user_id, raw) in enumerate(attributes):
        custom = raw.get("custom")
        flat = {k: v for k, v in raw.items() if k != "custom"} | (custom if isinstance(custom, dict) else {})
        try:
            target = parse_target(_ids(user_id, device_id))
            result.batch.attributes.append(AttributesItem(index, target, parse_attributes(flat)))
        except ValueError as exc:
            result.batch.errors.append(ItemError("attributes", index, str(exc)))
    for index, event in enumerate(events):
        try:
            _add_event(result, index, event, device_id, app_id, now)
        except (ValueError, TypeError) as exc:
            result.batch.errors.append(ItemError("events", index, str(exc)))
    return result


def parse_origin(text: str) -> str:
    """A page origin `scheme://host[:port]`, lower-cased; `InvalidApp` otherwise."""
    parts = urlsplit(text.strip().lower())
    if len(parts.scheme) + 3 + len(parts.netloc) > MAX_ORIGIN:  # the size of the stored origin
        raise InvalidApp(f"Not an origin (scheme://host[:port]): longer than {MAX_ORIGIN} characters")
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise InvalidApp(f"Not an origin (scheme://host[:port]): {text!r}")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise InvalidApp(f"Not an origin (scheme://host[:port]): {text!r}")
    return f"{parts.scheme}://{parts.netloc}"
