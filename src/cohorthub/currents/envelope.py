"""Currents event envelopes in the Custom HTTP wire shape (pure; imports no other domain).

`{"event_type", "id", "time", "user": {...}, "properties": {...}}`: `id` is a UUID (version 7) fixed when
the event is recorded (stable across retries and replays), `time` Unix seconds UTC, and
`user` carries `user_id` (braze_id), `external_user_id`, `device_id` and `timezone`, each
only when known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from cohorthub.ids import uuid7


class Envelope(msgspec.Struct, frozen=True):
    """One Currents event."""

    event_type: str
    id: str
    time: int
    user: dict[str, str]
    properties: dict[str, Any]


def event_user(
    *,
    braze_id: str,
    external_id: str | None = None,
    device_id: str | None = None,
    timezone: str | None = None,
) -> dict[str, str]:
    """The `user` object with only the identifiers that are known."""
    user = {"user_id": braze_id}
    if external_id is not None:
        user["external_user_id"] = external_id
    if device_id is not None:
        user["device_id"] = device_id
    if timezone is not None:
        user["timezone"] = timezone
    return user


def new_envelope(
    event_type: str, *, time: float, user: dict[str, str], properties: dict[str, Any]
) -> Envelope:
    """An event with a fresh UUID."""
    return Envelope(event_type=event_type, id=event_id(), time=int(time), user=user, properties=properties)


def event_id() -> str:
    """A fresh event id: a version 7 UUID (time-ordered, so the outbox's id index grows at its end)."""
    return uuid7()


def _app(properties: dict[str, Any], app_id: str | None, workspace_id: str) -> dict[str, Any]:
    properties["app_group_id"] = workspace_id
    if app_id is not None:
        properties["app_id"] = app_id
    return properties


def custom_event(
    *,
    workspace_id: str,
    user: dict[str, str],
    name: str,
    time: float,
    custom_properties: dict[str, Any],
    app_id: str | None = None,
    context: Mapping[str, str] | None = None,
) -> Envelope:
    """`users.behaviors.CustomEvent`; `context` adds the device's platform, OS and model."""
    props = _app(
        {"name": name, "custom_properties": custom_properties, **(context or {})}, app_id, workspace_id
    )
    return new_envelope("users.behaviors.CustomEvent", time=time, user=user, properties=props)


def purchase(
    *,
    workspace_id: str,
    user: dict[str, str],
    product_id: str,
    currency: str,
    price: float,
    time: float,
    purchase_properties: dict[str, Any],
    app_id: str | None = None,
    context: Mapping[str, str] | None = None,
) -> Envelope:
    """`users.behaviors.Purchase`; `context` adds the device's platform, OS and model."""
    props = _app(
        {
            "product_id": product_id,
            "currency": currency,
            "price": price,
            "purchase_properties": purchase_properties,
            **(context or {}),
        },
        app_id,
        workspace_id,
    )
    return new_envelope("users.behaviors.Purchase", time=time, user=user, properties=props)


def user_orphan(*, workspace_id: str, user: dict[str, str], orphaned_by_id: str, time: float) -> Envelope:
    """`users.UserOrphan`: `user` was merged into the profile `orphaned_by_id`."""
    props = {"app_group_id": workspace_id, "orphaned_by_id": orphaned_by_id}
    return new_envelope("users.UserOrphan", time=time, user=user, properties=props)


def user_delete_request(*, workspace_id: str, user: dict[str, str], time: float) -> Envelope:
    """`users.UserDeleteRequest`: the user was deleted through `/users/delete`."""
    return new_envelope(
        "users.UserDeleteRequest", time=time, user=user, properties={"app_group_id": workspace_id}
    )


#: `email_subscribe` values as Currents names the subscription status.
SUBSCRIPTION_STATUS = {"opted_in": "Opted In", "subscribed": "Subscribed", "unsubscribed": "Unsubscribed"}


def email_subscription_change(
    *, workspace_id: str, user: dict[str, str], state: str, email: str | None, time: float
) -> Envelope:
    """`users.behaviors.subscription.GlobalStateChange`: e-mail state changed through the REST API."""
    props: dict[str, Any] = {
        "app_group_id": workspace_id,
        "channel": "email",
        "state_change_source": "REST API",
        "subscription_status": SUBSCRIPTION_STATUS[state],
    }
    if email is not None:
        props["email_address"] = props["channel_identifier"] = email
    return new_envelope(
        "users.behaviors.subscription.GlobalStateChange", time=time, user=user, properties=props
    )


def session_event(
    kind: str,
    *,
    workspace_id: str,
    user: dict[str, str],
    app_id: str,
    session_id: str,
    time: float,
    context: Mapping[str, str],
    duration: float | None = None,
) -> Envelope:
    """`users.behaviors.app.SessionStart`, `SessionEnd` (with `duration`) or `FirstSession`."""
    props: dict[str, Any] = {"session_id": session_id, **context}
    if duration is not None:
        props["duration"] = duration
    props = _app(props, app_id, workspace_id)
    return new_envelope(f"users.behaviors.app.{kind}", time=time, user=user, properties=props)
