"""A user as `/users/export/ids` shows it, with Braze's field names (pure)."""

from __future__ import annotations

from typing import Any

from cohorthub.identity.model import STANDARD_FIELDS, Profile, iso_time
from cohorthub.identity.ports import Activity, Summary


def _plain(value: Any) -> Any:
    """Stored custom values as exported: times as ISO-8601 strings."""
    if isinstance(value, dict) and set(value) == {"$time"}:
        return value["$time"]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _summaries(items: list[Summary]) -> list[dict[str, Any]]:
    return [
        {"name": s.name, "first": iso_time(s.first), "last": iso_time(s.last), "count": s.count}
        for s in items
    ]


def export_user(
    profile: Profile,
    activity: Activity,
    cohorts: list[dict[str, str]],
    fields: frozenset[str] | None,
) -> dict[str, Any]:
    """The export object: unset scalar fields are left out, requested lists are always present."""
    full: dict[str, Any] = {
        "created_at": iso_time(profile.created_at),
        "external_id": profile.external_id,
        "user_aliases": [a.wire() for a in sorted(profile.aliases)],
        "braze_id": profile.braze_id,
        **{name: profile.get(name) for name in STANDARD_FIELDS},
        "custom_attributes": {k: _plain(v) for k, v in sorted(profile.custom.items())},
        "custom_events": _summaries(activity.events),
        "purchases": _summaries(activity.purchases),
        "devices": [{"device_id": d} for d in activity.devices],
        "cohorts": cohorts,
    }
    return {k: v for k, v in full.items() if v is not None and (fields is None or k in fields)}
