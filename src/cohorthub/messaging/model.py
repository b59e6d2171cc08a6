"""Campaign definitions: parsing and validating what a client sends (pure values and rules).

A campaign sends one message (e-mail or webhook) to an audience (users in any of its segments,
narrowed by an optional filter in the segment filter language) on a delivery: `now`, `scheduled`
(a time, optionally in each user's time zone), `recurring` (daily, weekly or monthly from a first
time), `action` (when the user performs a custom event) or `api` (`/campaigns/trigger/send`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cohorthub import clock
from cohorthub.messaging.errors import InvalidProgram
from cohorthub.messaging.liquid import compile_template
from cohorthub.messaging.ports import EventRow
from cohorthub.urls import http_url_problem

CHANNELS = ("email", "webhook")
DELIVERIES = ("now", "scheduled", "recurring", "action", "api")
RECURRENCES = ("daily", "weekly", "monthly")
SUBSCRIPTIONS = ("subscribed", "opted_in", "all")
METHODS = ("POST", "PUT", "DELETE", "GET")
STATUSES = ("draft", "active", "paused", "archived")
TEN_YEARS = 10 * 365 * 86400.0  # the longest duration a definition may give (seconds)
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_FROM = re.compile(r"^\s*(?:(?P<name>[^<>]*?)\s*<(?P<addr>[^<>]+)>|(?P<bare>[^<>\s]+))\s*$")


def new_program_id() -> str:
    """A fresh campaign or Canvas id."""
    return str(uuid.uuid4())


def is_email(text: str | None) -> bool:
    """True for an address a message can be sent to."""
    return bool(text) and _EMAIL.match(text or "") is not None


def parse_time(text: Any, path: str) -> float:
    """ISO 8601 (UTC when no offset) or Unix seconds, from year 1 to 9999 in UTC (showable)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if not clock.EARLIEST <= text <= clock.LATEST:
            raise InvalidProgram(path, "must be a time from year 1 to 9999")
        return float(text)
    if not isinstance(text, str):
        raise InvalidProgram(path, "must be an ISO 8601 time")
    try:
        return clock.parse_iso(text)
    except ValueError as exc:
        raise InvalidProgram(path, f"not an ISO 8601 time from year 1 to 9999: {text}") from exc


@dataclass(frozen=True, slots=True)
class EmailContent:
    """An e-mail message: Liquid in every text field."""

    sender: str
    subject: str
    body: str
    plaintext_body: str | None = None
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebhookContent:
    """A webhook: Liquid in the URL, header values and body."""

    url: str
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass(frozen=True, slots=True)
class Audience:
    """Users in any of `segment_ids` (all users when empty) and matching `filter`."""

    segment_ids: tuple[str, ...] = ()
    filter: dict[str, Any] | None = None
    subscription: str = "subscribed"


@dataclass(frozen=True, slots=True)
class Delivery:
    """When a campaign sends."""

    type: str = "api"
    time: float | None = None
    in_local_time: bool = False
    every: str | None = None
    until: float | None = None
    event: str | None = None
    purchase: str | None = None  # action-based on a purchase: its product id, or "*" for any


#: A custom event's name, or a purchase's product id ("*" for any) with `True`.
Trigger = tuple[str | None, bool]


class Triggers:
    """The custom events and purchases some programs react to, asked of each new event by lookup."""

    def __init__(self, triggers: Iterable[Trigger]) -> None:
        self._keys = {(purchase, name) for name, purchase in triggers if name is not None}

    def match(self, event: EventRow) -> bool:
        """Whether any of these triggers matches the event (`trigger_matches`)."""
        purchase = event.kind == "purchase"
        return (purchase, event.name) in self._keys or (purchase and (True, "*") in self._keys)

    def watch(self, purchase: bool) -> bool:
        """Whether any is a purchase trigger (with `purchase` False: a custom event trigger)."""
        return any(p == purchase for p, _ in self._keys)


def trigger_matches(name: str | None, purchase: bool, event: EventRow) -> bool:
    """Does this custom event or purchase match a trigger (a custom event's name, or a product id / "*")."""
    if (event.kind == "purchase") != purchase or name is None:
        return False
    return name == event.name or (purchase and name == "*")


def behavior(event: EventRow) -> str:
    """The conversion behaviour an event or purchase stands for, as Braze words it."""
    if event.kind == "purchase":
        return f"Makes Purchase: {event.name}"
    return f"Performs Custom Event: {event.name}"


@dataclass(frozen=True, slots=True)
class Conversion:
    """A conversion: the user performs `event` (or, with `purchase`, buys the product `event`, "*" for any)
    within `window_seconds` of receiving the message."""

    event: str
    window_seconds: float = 3 * 86400.0
    purchase: bool = False


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Hours (0–23, in the user's time zone, UTC when unknown) during which nothing is sent."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """A campaign's whole definition, validated."""

    name: str
    channel: str
    message: EmailContent | WebhookContent
    audience: Audience = Audience()
    delivery: Delivery = Delivery()
    description: str = ""
    tags: tuple[str, ...] = ()
    conversion: Conversion | None = None
    rate_limit_per_minute: int | None = None
    frequency_capping: bool = True
    quiet_hours: QuietHours | None = None
    message_variation_id: str = ""

    def triggers(self) -> list[Trigger]:
        """The custom events and purchases this campaign reacts to: its action trigger and conversion."""
        out: list[Trigger] = []
        if self.conversion:
            out.append((self.conversion.event, self.conversion.purchase))
        if self.delivery.type == "action":
            out.append((self.delivery.purchase or self.delivery.event, self.delivery.purchase is not None))
        return out


class Fields:
    """Reads a JSON object field by field, naming the path of whatever is wrong."""

    def __init__(self, raw: Any, path: str) -> None:
        if not isinstance(raw, dict):
            raise InvalidProgram(path, "must be an object")
        self.raw = raw
        self.path = path

    def at(self, key: str) -> str:
        """The path of `key`."""
        return f"{self.path}.{key}" if self.path else key

    def text(self, key: str, *, default: str | None = None, limit: int = 100_000) -> str:
        """A required (or defaulted) string."""
        value = self.raw.get(key, default)
        if not isinstance(value, str) or (default is None and not value.strip()) or len(value) > limit:
            raise InvalidProgram(self.at(key), f"must be a non-empty string of at most {limit} characters")
        return value

    def optional_text(self, key: str) -> str | None:
        """A string or nothing."""
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidProgram(self.at(key), "must be a string")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        """One of `allowed`."""
        value = self.raw.get(key, default)
        if value not in allowed:
            raise InvalidProgram(self.at(key), "must be one of " + ", ".join(allowed))
        return str(value)

    def number(
        self, key: str, *, default: float | None = None, minimum: float = 0, maximum: float = TEN_YEARS
    ) -> float | None:
        """A number from `minimum` to `maximum` (durations: at most ten years of seconds), or the default."""
        value = self.raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not minimum <= value <= maximum:
            raise InvalidProgram(self.at(key), f"must be a number from {minimum:,g} to {maximum:,.0f}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        """A boolean."""
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise InvalidProgram(self.at(key), "must be true or false")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        """An array of non-empty strings (absent = empty)."""
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise InvalidProgram(self.at(key), "must be an array of non-empty strings")
        return tuple(value)

    def mapping(self, key: str) -> dict[str, str]:
        """An object of string values (absent = empty)."""
        value = self.raw.get(key) or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise InvalidProgram(self.at(key), "must be an object of strings")
        return dict(value)


def _template(source: str, path: str) -> str:
    compile_template(source, path=path)
    return source


def parse_email(raw: Any, path: str) -> EmailContent:
    """An e-mail message; every Liquid field compiled once to report errors by line and column."""
    f = Fields(raw, path)
    sender = f.text("from", limit=320)
    match = _FROM.match(sender)
    if match is None or not is_email(match.group("addr") or match.group("bare")):
        raise InvalidProgram(f.at("from"), 'must be "Display Name <address@domain>" or an address')
    reply_to = f.optional_text("reply_to")
    if reply_to is not None and reply_to != "NO_REPLY_TO" and not is_email(reply_to):
        raise InvalidProgram(f.at("reply_to"), "must be an e-mail address")
    plain = f.optional_text("plaintext_body")
    headers = f.mapping("headers")
    for name, value in headers.items():
        _template(value, f"{f.at('headers')}.{name}")
    return EmailContent(
        sender=sender,
        subject=_template(f.text("subject", limit=2000), f.at("subject")),
        body=_template(f.text("body", limit=2_000_000), f.at("body")),
        plaintext_body=_template(plain, f.at("plaintext_body")) if plain else None,
        reply_to=reply_to,
        headers=headers,
    )


def parse_webhook(raw: Any, path: str) -> WebhookContent:
    """A webhook message."""
    f = Fields(raw, path)
    url = _template(f.text("url", limit=4000), f.at("url"))
    if not re.match(r"^https?://", url):
        raise InvalidProgram(f.at("url"), "must start with http:// or https://")
    if "{{" not in url and "{%" not in url and (problem := http_url_problem(url)):
        raise InvalidProgram(f.at("url"), problem)  # with Liquid in it: checked when sent
    headers = f.mapping("request_headers")
    for name, value in headers.items():
        _template(value, f"{f.at('request_headers')}.{name}")
    body = f.optional_text("body") or ""
    return WebhookContent(
        url=url,
        method=f.choice("request_method", METHODS, "POST"),
        headers=headers,
        body=_template(body, f.at("body")),
    )


def parse_audience(raw: Any, path: str) -> Audience:
    """An audience (its filter is checked against the segment language by the service)."""
    f = Fields(raw if raw is not None else {}, path)
    flt = f.raw.get("filter")
    if flt is not None and not isinstance(flt, dict):
        raise InvalidProgram(f.at("filter"), "must be a filter object")
    return Audience(
        segment_ids=f.strings("segment_ids"),
        filter=flt,
        subscription=f.choice("subscription", SUBSCRIPTIONS, "subscribed"),
    )


def parse_delivery(raw: Any, path: str) -> Delivery:
    """A delivery; times as ISO 8601 or Unix seconds."""
    f = Fields(raw if raw is not None else {}, path)
    kind = f.choice("type", DELIVERIES, "api")
    time = parse_time(f.raw["time"], f.at("time")) if f.raw.get("time") is not None else None
    if kind in ("scheduled", "recurring") and time is None:
        raise InvalidProgram(f.at("time"), f"is required for {kind} delivery")
    every = f.choice("every", RECURRENCES) if kind == "recurring" else None
    purchase = is_purchase_trigger(f) if kind == "action" else False
    event = f.text("event", limit=256) if kind == "action" and not purchase else None
    product = f.text("purchase", limit=256) if purchase else None
    until = parse_time(f.raw["until"], f.at("until")) if f.raw.get("until") is not None else None
    return Delivery(
        type=kind,
        time=time,
        in_local_time=f.flag("in_local_time", False),
        every=every,
        until=until,
        event=event,
        purchase=product,
    )


def parse_conversion(raw: Any, path: str) -> Conversion | None:
    """A conversion event and window, or nothing."""
    if raw is None:
        return None
    f = Fields(raw, path)
    window = f.number("window_seconds", default=3 * 86400.0, minimum=1)
    purchase = is_purchase_trigger(f)
    name = f.text("purchase" if purchase else "event", limit=256)
    return Conversion(event=name, window_seconds=window or 3 * 86400.0, purchase=purchase)


def is_purchase_trigger(f: Fields) -> bool:
    """True when the trigger is a purchase (`purchase`: a product id or "*"), False for `event`."""
    if "purchase" in f.raw and "event" in f.raw:
        raise InvalidProgram(f.at("purchase"), "give either event or purchase, not both")
    return "purchase" in f.raw


def parse_quiet_hours(raw: Any, path: str) -> QuietHours | None:
    """Quiet hours, or nothing."""
    if raw is None:
        return None
    f = Fields(raw, path)
    hours = []
    for key in ("start", "end"):
        value = f.raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 23:
            raise InvalidProgram(f.at(key), "must be an hour from 0 to 23")
        hours.append(value)
    return QuietHours(start=hours[0], end=hours[1])


def parse_campaign(raw: Any) -> CampaignSpec:
    """Validate a campaign definition (the whole JSON object a client sends)."""
    f = Fields(raw, "")
    channel = f.choice("channel", CHANNELS)
    message: EmailContent | WebhookContent = (
        parse_email(f.raw.get("email"), "email")
        if channel == "email"
        else parse_webhook(f.raw.get("webhook"), "webhook")
    )
    rate = f.number("rate_limit_per_minute", minimum=1)
    return CampaignSpec(
        name=f.text("name", limit=200).strip(),
        channel=channel,
        message=message,
        audience=parse_audience(f.raw.get("audience"), "audience"),
        delivery=parse_delivery(f.raw.get("delivery"), "delivery"),
        description=f.text("description", default=""),
        tags=f.strings("tags"),
        conversion=parse_conversion(f.raw.get("conversion"), "conversion"),
        rate_limit_per_minute=int(rate) if rate is not None else None,
        frequency_capping=f.flag("frequency_capping", True),
        quiet_hours=parse_quiet_hours(f.raw.get("quiet_hours"), "quiet_hours"),
        message_variation_id=str(f.raw.get("message_variation_id") or uuid.uuid4()),
    )
