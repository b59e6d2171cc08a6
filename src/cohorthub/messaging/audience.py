"""Audiences: the filter a campaign's segments and extra filter make, and who can be reached (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cohorthub.messaging.model import Audience, QuietHours, is_email
from cohorthub.messaging.ports import UserRow


def audience_filter(audience: Audience) -> dict[str, Any] | None:
    """Users in any of the segments (all users when none) and matching the extra filter; None = everyone."""
    parts: list[dict[str, Any]] = []
    if audience.segment_ids:
        leaves = [{"type": "segment", "segment_id": s, "op": "includes"} for s in audience.segment_ids]
        parts.append(leaves[0] if len(leaves) == 1 else {"or": leaves})
    if audience.filter is not None:
        parts.append(audience.filter)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"and": parts}


def unreachable_reason(user: UserRow, channel: str, subscription: str) -> str | None:
    """Why the user cannot get a message on `channel` (None: reachable)."""
    if channel != "email":
        return None
    if not is_email(user.email):
        return "no valid e-mail address"
    state = user.email_subscribe or "subscribed"
    if subscription == "opted_in" and state != "opted_in":
        return "not opted in"
    if subscription == "subscribed" and state == "unsubscribed":
        return "unsubscribed"
    return None


def zone(name: str | None) -> ZoneInfo | None:
    """The user's time zone, or None when unknown or invalid."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def quiet_until(quiet: QuietHours | None, time_zone: str | None, now: float) -> float | None:
    """The end of the quiet hours the user is in now (their zone, UTC when unknown); None when not quiet."""
    if quiet is None or quiet.start == quiet.end:
        return None
    tz = zone(time_zone) or ZoneInfo("UTC")
    local = datetime.fromtimestamp(now, tz)
    hour = local.hour
    inside = (
        quiet.start <= hour < quiet.end
        if quiet.start < quiet.end
        else hour >= quiet.start or hour < quiet.end
    )
    if not inside:
        return None
    end = local.replace(hour=quiet.end, minute=0, second=0, microsecond=0)
    if end <= local:
        end = end.fromtimestamp(end.timestamp() + 86400, tz).replace(hour=quiet.end, minute=0, second=0)
    return end.timestamp()


def local_time_at(utc_time: float, time_zone: str | None) -> float:
    """The moment the wall-clock time of `utc_time` (read in UTC) happens in the user's zone."""
    tz = zone(time_zone)
    if tz is None:
        return utc_time
    wall = datetime.fromtimestamp(utc_time, ZoneInfo("UTC")).replace(tzinfo=tz)
    return wall.timestamp()
