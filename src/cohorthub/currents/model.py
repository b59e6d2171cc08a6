"""Connectors, batches and their statistics (pure values and rules)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import Enum
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from cohorthub.config import Secret
from cohorthub.currents.errors import InvalidConnector
from cohorthub.urls import http_url_problem

KINDS: tuple[str, ...] = ("http", "heap")
DEFAULT_EVENTS = "*"
DEFAULT_BATCH_SIZE = 100
MAX_BATCH_SIZE = 10_000
_GLOB = re.compile(r"^[A-Za-z0-9_.*?-]+$")  # `*` and `?` wildcards only
_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")  # RFC 6750 b64token


class ConnectorState(Enum):
    """What a connector is doing now."""

    ACTIVE = "active"
    PAUSED = "paused"
    BACKING_OFF = "backing_off"  # 5xx/429/network: waiting for the next attempt
    HALTED = "halted"  # 401/403/404: credentials rejected, probing every 2–5 min


@dataclass(frozen=True, slots=True)
class EventSelection:
    """Comma-separated globs over event types, e.g. `users.messages.*,users.behaviors.*`."""

    patterns: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> EventSelection:
        """Parse and validate the globs; `InvalidConnector` when one is not usable."""
        patterns = tuple(p.strip() for p in text.split(",") if p.strip())
        if not patterns:
            raise InvalidConnector("Event selection must name at least one event type or glob")
        for pattern in patterns:
            if not _GLOB.match(pattern) or len(pattern) > 128:
                raise InvalidConnector(f"Invalid event type glob: {pattern!r}")
        return cls(patterns)

    def matches(self, event_type: str) -> bool:
        """True when the event type is selected."""
        return any(fnmatchcase(event_type, p) for p in self.patterns)

    def __str__(self) -> str:
        return ",".join(self.patterns)


@dataclass(frozen=True, slots=True)
class Connector:
    """A Currents export of one workspace's events to one HTTP endpoint."""

    id: str
    workspace_id: str
    kind: str
    url: str
    token: Secret | None
    events: EventSelection
    batch_size: int
    paused: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class ConnectorStats:
    """Progress of one connector; counts are events, ages seconds."""

    connector_id: str
    state: ConnectorState
    queued: int
    in_flight: int
    delivered: int
    retried: int
    dropped: int
    dead_letters: int
    oldest_undelivered_age: float | None
    last_status: int | None
    last_error: str | None
    last_error_at: float | None
    next_attempt_at: float | None


def new_connector_id() -> str:
    """A fresh 32-hex connector id."""
    return uuid.uuid4().hex


def validate_url(url: str) -> str:
    """An absolute http(s) URL without credentials in it."""
    url = url.strip()
    if problem := http_url_problem(url):
        raise InvalidConnector(f"Connector URL {problem}")
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise InvalidConnector("Connector URL must not carry credentials; use the bearer token")
    return url


def validate_kind(kind: str) -> str:
    """`http` (Custom HTTP) or `heap` (the Heap Export preset)."""
    if kind not in KINDS:
        raise InvalidConnector(f"Connector kind must be one of: {', '.join(KINDS)}")
    return kind


def validate_token(token: str | None) -> Secret | None:
    """An RFC 6750 bearer token, or None."""
    if token is None or token == "":
        return None
    if not _TOKEN.match(token) or len(token) > 4096:
        raise InvalidConnector("Bearer token must use only letters, digits and -._~+/ (RFC 6750)")
    return Secret(token)


def validate_batch_size(size: int) -> int:
    """1 … 10,000 events per request."""
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise InvalidConnector(f"Batch size must be between 1 and {MAX_BATCH_SIZE}")
    return size
