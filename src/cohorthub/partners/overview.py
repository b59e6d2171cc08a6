"""What an operator sees of a partner: its keys, integrations, key sightings, and the REST endpoint."""

from __future__ import annotations

from dataclasses import dataclass

from cohorthub import keys
from cohorthub.partners.model import Integration, KeySighting, RestEndpoint, choose_rest_endpoint
from cohorthub.partners.ports import AddressUnitOfWork, PartnerUnitOfWork
from cohorthub.partners.services import get_partner

LISTEN_URL = "listen_url"
PUBLIC_URL = "public_url"


@dataclass(frozen=True, slots=True)
class KeyView:
    """A registered partner API key, by fingerprint (the value is never stored)."""

    id: int
    fingerprint: str
    created_at: float
    expires_at: float | None
    active: bool


@dataclass(frozen=True, slots=True)
class IntegrationView:
    """One workspace's integration with the partner, with the unregistered keys it accepted."""

    integration: Integration
    sightings: list[KeySighting]


@dataclass(frozen=True, slots=True)
class PartnerOverview:
    """Everything `partner show` prints."""

    partner: str
    display_name: str
    keys: list[KeyView]
    integrations: list[IntegrationView]


def describe_partner(
    *, uow: PartnerUnitOfWork, partner: str, workspace_id: str | None, now: float
) -> PartnerOverview:
    """The partner's keys and its integrations (all workspaces, or one)."""
    info = get_partner(partner)
    key_views = [
        KeyView(
            id=k.id,
            fingerprint=k.key_hash[: keys.FINGERPRINT_LENGTH],
            created_at=k.created_at,
            expires_at=k.expires_at,
            active=k.active(now),
        )
        for k in uow.partners.partner_keys(partner)
    ]
    integrations = [
        IntegrationView(i, uow.partners.sightings(i.workspace_id, partner))
        for i in uow.partners.integrations(partner)
        if workspace_id is None or i.workspace_id == workspace_id
    ]
    return PartnerOverview(partner, info.display_name, key_views, integrations)


def record_server_addresses(
    *, uow: AddressUnitOfWork, listen_url: str, public_url: str | None, now: float
) -> None:
    """Remember where `serve` listens and its configured public URL (None clears it)."""
    uow.server_addresses.put(LISTEN_URL, listen_url, now=now)
    uow.server_addresses.put(PUBLIC_URL, public_url, now=now)
    uow.commit()


def rest_endpoint(*, uow: AddressUnitOfWork, configured: str | None) -> RestEndpoint:
    """The REST endpoint to give partners: configured, else what `serve` recorded."""
    return choose_rest_endpoint(
        configured=configured,
        recorded_public=uow.server_addresses.get(PUBLIC_URL),
        recorded_listen=uow.server_addresses.get(LISTEN_URL),
    )
