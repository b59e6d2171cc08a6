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
    partner_key_id: int


def hour_window(now: float) -> tuple[int, int]:
    """The fixed hourly quota window containing `now`: (start, seconds until it ends)."""
    start = int(now // 3600) * 3600
    return start, max(1, int(start + 3600 - now + 0.999))
