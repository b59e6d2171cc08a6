"""The partner registry and partner credentials (pure values)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Partner:
    """A technology partner that can push cohorts."""

    name: str  # the path segment: /partners/{name}/cohorts
    display_name: str
    filter_name: str  # the segment filter shown to marketers, e.g. "Heap Cohorts"


def _p(name: str, display: str) -> Partner:
    return Partner(name=name, display_name=display, filter_name=f"{display} Cohorts")


REGISTRY: dict[str, Partner] = {
    p.name: p
    for p in (
        _p("heap", "Heap"),
        _p("mixpanel", "Mixpanel"),
        _p("amplitude", "Amplitude"),
        _p("segment", "Segment"),
        _p("hightouch", "Hightouch"),
        _p("census", "Census"),
        _p("treasuredata", "Treasure Data"),
        _p("kubit", "Kubit"),
        _p("tinyclues", "Tinyclues"),
        _p("splio", "Splio"),
        _p("appsflyer", "AppsFlyer"),
        _p("amperity", "Amperity"),
        _p("customerio", "Customer.io"),
    )
}


@dataclass(frozen=True, slots=True)
class PartnerKey:
    """A stored partner API key."""

    id: int
    partner: str
    created_at: float
    expires_at: float | None
    key_hash: str = ""

    def active(self, now: float) -> bool:
        """Whether the key still opens the partner endpoints at `now`."""
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class DataImportKey:
    """A stored data import key (the partner's `client_secret`)."""

    id: int
    workspace_id: str
    partner: str
    created_at: float
    expires_at: float | None

    def active(self, now: float) -> bool:
        """Whether the key still identifies its workspace at `now`."""
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class PartnerCaller:
    """Who an authenticated partner request speaks for."""

    partner: str
    workspace_id: str
    partner_key_id: int  # the quota counter's key: a partner key id, or -(data import key id)
    presented_fingerprint: str | None = None  # set when an unregistered partner key was accepted


def hour_window(now: float) -> tuple[int, int]:
    """The fixed hourly quota window containing `now`: (start, seconds until it ends)."""
    start = int(now // 3600) * 3600
    return start, max(1, int(start + 3600 - now + 0.999))


#: Both keys are checked (the default).
AUTH_PARTNER_KEY = "partner_key"
#: The data import key alone authenticates; the partner key presented is only fingerprinted.
AUTH_DATA_IMPORT_KEY_ONLY = "data_import_key_only"
AUTH_MODES = (AUTH_PARTNER_KEY, AUTH_DATA_IMPORT_KEY_ONLY)

#: Bounds of a partner key value registered with `partner add-key`.
KEY_MIN_LENGTH, KEY_MAX_LENGTH = 16, 256


@dataclass(frozen=True, slots=True)
class Integration:
    """A partner as configured for one workspace."""

    workspace_id: str
    partner: str
    enabled: bool
    auth_mode: str
    updated_at: float


@dataclass(frozen=True, slots=True)
class KeySighting:
    """A partner key fingerprint seen on requests accepted by the data import key alone."""

    fingerprint: str
    first_seen: float
    last_seen: float
    requests: int


def key_value_problem(value: str) -> str | None:
    """Why `value` cannot be a partner API key (None when it can)."""
    if not KEY_MIN_LENGTH <= len(value) <= KEY_MAX_LENGTH:
        return f"a partner API key has {KEY_MIN_LENGTH} to {KEY_MAX_LENGTH} characters, got {len(value)}"
    if not all("!" <= ch <= "~" for ch in value):
        return "a partner API key is printable ASCII without spaces"
    return None


@dataclass(frozen=True, slots=True)
class RestEndpoint:
    """The URL partners send to, and where it came from."""

    url: str | None
    source: str  # "configured", "serve --public-url", "serve listen address", "unknown"


def choose_rest_endpoint(
    *, configured: str | None, recorded_public: str | None, recorded_listen: str | None
) -> RestEndpoint:
    """The configured public URL wins, then what `serve` recorded: its public URL, its listen address."""
    for url, source in (
        (configured, "configured"),
        (recorded_public, "public URL of serve"),
        (recorded_listen, "address serve listens on"),
    ):
        if url:
            return RestEndpoint(url=url.rstrip("/"), source=source)
    return RestEndpoint(url=None, source="unknown")
