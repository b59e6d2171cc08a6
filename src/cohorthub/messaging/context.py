"""The Liquid values for one user and one message (pure)."""

from __future__ import annotations

from typing import Any

from cohorthub.messaging.ports import UserRow

_STANDARD = {
    "first_name": "first_name",
    "last_name": "last_name",
    "gender": "gender",
    "date_of_birth": "dob",
    "country": "country",
    "city": "home_city",
    "language": "language",
    "phone_number": "phone",
}


def liquid_values(
    user: UserRow,
    *,
    trigger_properties: dict[str, Any] | None = None,
    canvas_entry_properties: dict[str, Any] | None = None,
    event_properties: dict[str, Any] | None = None,
    campaign: dict[str, Any] | None = None,
    canvas: dict[str, Any] | None = None,
    links: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Standard and custom attributes, properties, campaign/Canvas names and list links."""
    values: dict[str, Any] = {name: user.attributes.get(col) for name, col in _STANDARD.items()}
    values.update(
        email_address=user.email,
        time_zone=user.time_zone,
        user_id=user.external_id,
        braze_id=user.braze_id,
        custom_attribute=user.custom_attributes,
        subscribed_state={"email_global": user.email_subscribe or "subscribed"},
        api_trigger_properties=trigger_properties or {},
        trigger_properties=trigger_properties or {},
        canvas_entry_properties=canvas_entry_properties or {},
        context=canvas_entry_properties or {},
        event_properties=event_properties or {},
        campaign=campaign or {},
        canvas=canvas or {},
    )
    for name, url in (links or {}).items():
        values[name] = url
    return values
