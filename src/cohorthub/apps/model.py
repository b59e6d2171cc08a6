"""SDK apps and the data requests of Braze's Web SDK (pure values and parsing).

A request (`POST /api/v3/data/`) carries the device (`device_id`, `device`), the SDK's queued
`events` (each `{"name": code, "time": seconds, "data": {...}, "session_id", "user_id"?}`) and
`attributes` (per `user_id`, standard fields and `custom`). docs/web-sdk.md lists the codes.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cohorthub.apps.errors import InvalidSdkRequest
from cohorthub.identity.model import is_finite
from cohorthub.text import storable_problem

#: Session start, session end, custom event, purchase, and the custom-attribute operations.
SESSION_START, SESSION_END, CUSTOM_EVENT, PURCHASE = "ss", "se", "ce", "p"
ATTRIBUTE_OPS = {"inc": "inc", "add": "add", "rem": "remove", "set": "set"}
#: The SDK's own error reports: counted, never stored as user data.
SDK_ERROR = "ie"
#: Codes the SDK sends for messaging features cohorthub does not serve (cards, in-app messages,
#: banners, feature flags, location, subscription groups, aliases): accepted and counted as ignored.
IGNORED_CODES = frozenset(
    {"pc", "ca", "i", "cci", "ccic", "ccc", "ccd", "si", "sc", "sbc", "sfe", "iec", "lr", "uae"}
    | {"lcaa", "lcar", "ncam", "sgu", "ffi", "bi", "bc", "bd"}
)
KNOWN_CODES = frozenset({SESSION_START, SESSION_END, CUSTOM_EVENT, PURCHASE, SDK_ERROR, *ATTRIBUTE_OPS})
MAX_IDENTIFIER = 512
#: Distinct `user_id`s one request may name (a browser names one, or a few across `changeUser`): each is
#: locked for the request's transaction, and thousands would overflow PostgreSQL's lock table.
MAX_USERS = 75
MAX_DEVICE_FIELD = 128
MAX_SESSION_ID = 128
_DEVICE_FIELDS = ("browser", "browser_version", "os_version", "model", "locale", "time_zone", "user_agent")
_encoder = msgspec.json.Encoder(order="sorted")


@dataclass(frozen=True, slots=True)
class App:
    """An SDK app of a workspace; its `id` is the `app_id` of the events it sends."""

    id: str
    workspace_id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Device:
    """What the SDK says about the browser it runs in (every field optional but the platform)."""

    platform: str = "web"
    browser: str | None = None
    browser_version: str | None = None
    os_version: str | None = None
    device_model: str | None = None
    locale: str | None = None
    time_zone: str | None = None
    user_agent: str | None = None
    sdk_version: str | None = None

    def currents(self) -> dict[str, str]:
        """`platform`, `os_version` and `device_model` for Currents events, where known."""
        fields = {"platform": self.platform, "os_version": self.os_version, "device_model": self.device_model}
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True, slots=True)
class SdkEvent:
    """One queued SDK event; `fingerprint` is its identity for retry deduplication."""

    code: str
    time: float
    data: dict[str, Any]
    session_id: str | None
    user_id: str | None
    fingerprint: str


@dataclass(slots=True)
class SdkRequest:
    """A parsed data request: the usable events and attributes, and counts of what was dropped."""

    device_id: str
    device: Device | None
    events: list[SdkEvent] = field(default_factory=list)
    attributes: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    malformed: int = 0
    unknown: int = 0
    ignored: int = 0
    sdk_errors: int = 0


def new_app_id() -> str:
    """A fresh 32-hex app id."""
    return uuid.uuid4().hex


def _text(value: object, limit: int = MAX_IDENTIFIER) -> str | None:
    """A non-blank string both stores can hold, cut to `limit` characters; None otherwise."""
    if not isinstance(value, str) or not value.strip() or storable_problem(value):
        return None
    return value[:limit]


def parse_device(raw: object, sdk_version: object) -> Device | None:
    """The `device` object (sent when it changed since the last request), None when absent."""
    if not isinstance(raw, dict):
        return None
    v = {k: _text(raw.get(k), MAX_DEVICE_FIELD if k != "user_agent" else 1024) for k in _DEVICE_FIELDS}
    return Device(
        browser=v["browser"],
        browser_version=v["browser_version"],
        os_version=v["os_version"],
        device_model=v["model"] or v["browser"],
        locale=v["locale"],
        time_zone=v["time_zone"],
        user_agent=v["user_agent"],
        sdk_version=_text(sdk_version, 32),
    )


def fingerprint(device_id: str, event: dict[str, Any]) -> str:
    """An event's identity: device, session, code, time, user and data (SHA-256, 64 hex)."""
    parts = [device_id, event.get("session_id"), event.get("name"), event.get("time")]
    parts += [event.get("user_id"), event.get("data")]
    return hashlib.sha256(_encoder.encode(parts)).hexdigest()


def _event_problem(code: str, data: dict[str, Any], session: object) -> str | None:
    if code in (SESSION_START, SESSION_END) and not _text(session, MAX_SESSION_ID):
        return "session event without a session_id"
    if code == SESSION_END:
        d = data.get("d")
        ok = not isinstance(d, bool) and isinstance(d, int | float) and is_finite(d) and d >= 0
        return None if ok else "session end without a duration"
    if code == CUSTOM_EVENT and not _text(data.get("n"), 255):
        return "custom event without a name"
    if code == PURCHASE and not _text(data.get("pid"), 255):
        return "purchase without a product id"
    if code in ATTRIBUTE_OPS and not _text(data.get("key"), 255):
        return "attribute operation without a key"
    return None


def _parse_event(device_id: str, raw: object, now: float) -> SdkEvent | str:
    """A usable event, or the reason it is not (`unknown:` prefix for an unknown code)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        return "not an event object"
    code = raw["name"]
    if code not in KNOWN_CODES and code not in IGNORED_CODES:
        return f"unknown: {code[:32]}"
    when, data = raw.get("time"), raw.get("data", {})
    if isinstance(when, bool) or not isinstance(when, int | float) or not is_finite(when) or when <= 0:
        return "event without a time"
    if not isinstance(data, dict):
        return "event data is not an object"
    session, user = raw.get("session_id"), raw.get("user_id")
    if problem := _event_problem(code, data, session):
        return problem
    if (session is not None and not _text(session, MAX_SESSION_ID)) or (user is not None and not _text(user)):
        return "bad session_id or user_id"
    session = None if session is None else _text(session, MAX_SESSION_ID)  # as the sessions table holds it
    return SdkEvent(code, min(float(when), now), data, session, user, fingerprint(device_id, raw))


def parse_sdk_request(body: Any, *, now: float) -> SdkRequest:
    """Validate a data request; `InvalidSdkRequest` when it names no device, else drop bad items."""
    if not isinstance(body, dict):
        raise InvalidSdkRequest("invalid_request", "the body is not a JSON object")
    device_id = _text(body.get("device_id"))
    if isinstance(raw_id := body.get("device_id"), str) and (problem := storable_problem(raw_id)):
        raise InvalidSdkRequest("invalid_request", f"device_id {problem}")
    if device_id is None:
        raise InvalidSdkRequest("no_device_identifier", "device_id is missing")
    request = SdkRequest(device_id, parse_device(body.get("device"), body.get("sdk_version")))
    events, attributes = body.get("events"), body.get("attributes")
    events, attributes = [] if events is None else events, [] if attributes is None else attributes
    if not isinstance(events, list) or not isinstance(attributes, list):
        raise InvalidSdkRequest("invalid_request", "events and attributes must be arrays")
    for raw in events:
        parsed = _parse_event(device_id, raw, now)
        if isinstance(parsed, str):
            if parsed.startswith("unknown:"):
                request.unknown += 1
            else:
                request.malformed += 1
        elif parsed.code == SDK_ERROR:
            request.sdk_errors += 1
        elif parsed.code in IGNORED_CODES:
            request.ignored += 1
        else:
            request.events.append(parsed)
    for raw in attributes:
        user = raw.get("user_id") if isinstance(raw, dict) else None
        if not isinstance(raw, dict) or (user is not None and not _text(user)):
            request.malformed += 1
            continue
        request.attributes.append((user, {k: v for k, v in raw.items() if k != "user_id"}))
    users = {e.user_id for e in request.events} | {user for user, _ in request.attributes}
    if len(users - {None}) > MAX_USERS:
        raise InvalidSdkRequest("invalid_request", f"the request names more than {MAX_USERS} users")
    return request
