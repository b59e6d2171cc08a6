"""Wire types of the Braze Web SDK data endpoint (`POST /api/v3/data/`), as the SDK sends them."""

from __future__ import annotations

from typing import Any

import msgspec


class SdkDevice(msgspec.Struct, omit_defaults=True):
    """The browser the SDK runs in (sent when it changed since the last request)."""

    browser: str | None = None
    browser_version: str | None = None
    os_version: str | None = None
    locale: str | None = None
    time_zone: str | None = None
    user_agent: str | None = None


class SdkEvent(msgspec.Struct, omit_defaults=True):
    """One queued event: `name` is its code (`ss`, `se`, `ce`, `p`, `inc`, `add`, `rem`, `set`, `ie`, …)."""

    name: str
    time: float
    data: dict[str, Any] = {}
    session_id: str | None = None
    user_id: str | None = None


class SdkDataRequest(msgspec.Struct, omit_defaults=True):
    """What the SDK posts; `attributes` objects carry `user_id` once the SDK has one."""

    api_key: str
    device_id: str
    time: int | None = None
    sdk_version: str | None = None
    device: SdkDevice | None = None
    events: list[SdkEvent] = []
    attributes: list[dict[str, Any]] = []
    respond_with: dict[str, Any] | None = None


class SdkDataResponse(msgspec.Struct, omit_defaults=True):
    """`{}` when stored; `{"error": code, "message": ...}` (also a 200) when the SDK must not retry."""

    error: str | None = None
    message: str | None = None
