"""Partner use cases: issue and rotate keys, enable and disable, authenticate requests."""

from __future__ import annotations

from dataclasses import dataclass

from cohorthub import keys
from cohorthub.partners.errors import (
    InvalidClientSecret,
    InvalidPartnerApiKey,
    PartnerAlreadyEnabled,
    PartnerNotConfigured,
    PartnerNotEnabled,
    PartnerQuotaExceeded,
    UnknownPartner,
)
from cohorthub.partners.model import REGISTRY, Partner, PartnerCaller, hour_window
from cohorthub.partners.ports import PartnerUnitOfWork


def get_partner(name: str) -> Partner:
    """The registered partner, or `UnknownPartner`."""
    partner = REGISTRY.get(name)
    if partner is None:
        raise UnknownPartner(f"Unknown partner: {name}")
    return partner


def issue_partner_key(*, uow: PartnerUnitOfWork, partner: str, now: float) -> str:
    """Issue a new partner API key; existing keys keep working."""
    get_partner(partner)
    key = keys.new_key()
    uow.partners.add_partner_key(partner=partner, key_hash=keys.hash_key(key), now=now)
    uow.commit()
    return key


def rotate_partner_key(*, uow: PartnerUnitOfWork, partner: str, now: float, grace_seconds: float) -> str:
    """Issue a new partner API key; older ones stop working after `grace_seconds`."""
    get_partner(partner)
    uow.partners.expire_partner_keys(partner=partner, at=now + max(0.0, grace_seconds))
    key = keys.new_key()
    uow.partners.add_partner_key(partner=partner, key_hash=keys.hash_key(key), now=now)
    uow.commit()
    return key


def integration_states(*, uow: PartnerUnitOfWork, workspace_id: str) -> dict[str, bool | None]:
    """Each registered partner's state in the workspace: True on, False off, None never enabled."""
    return {name: uow.partners.integration_enabled(workspace_id, name) for name in REGISTRY}


@dataclass(frozen=True, slots=True)
class Enabled:
    """The result of enabling a partner: what the customer gives the partner."""

    partner: str
    workspace_id: str
    data_import_key: str


def enable_partner(*, uow: PartnerUnitOfWork, workspace_id: str, partner: str, now: float) -> Enabled:
    """Turn a partner on for a workspace and issue its data import key."""
    get_partner(partner)
    if uow.partners.integration_enabled(workspace_id, partner):
        raise PartnerAlreadyEnabled(
            f"Partner {partner} is already enabled for workspace {workspace_id}; "
            "use `partner rotate-key` for a new data import key"
        )
    uow.partners.expire_data_import_keys(workspace_id=workspace_id, partner=partner, at=now)
    uow.partners.set_integration(workspace_id=workspace_id, partner=partner, enabled=True, now=now)
    key = keys.new_key()
    uow.partners.add_data_import_key(
        workspace_id=workspace_id, partner=partner, key_hash=keys.hash_key(key), now=now
    )
    uow.commit()
    return Enabled(partner=partner, workspace_id=workspace_id, data_import_key=key)


def disable_partner(*, uow: PartnerUnitOfWork, workspace_id: str, partner: str, now: float) -> None:
    """Turn a partner off: its data import keys answer `Partner not enabled …`."""
    get_partner(partner)
    if uow.partners.integration_enabled(workspace_id, partner) is None:
        raise PartnerNotConfigured(f"Partner {partner} was never enabled for workspace {workspace_id}")
    uow.partners.set_integration(workspace_id=workspace_id, partner=partner, enabled=False, now=now)
    uow.commit()


def rotate_data_import_key(
    *, uow: PartnerUnitOfWork, workspace_id: str, partner: str, now: float, grace_seconds: float
) -> str:
    """Issue a new data import key; older ones stop working after `grace_seconds` (0 = at once)."""
    get_partner(partner)
    if not uow.partners.integration_enabled(workspace_id, partner):
        raise PartnerNotConfigured(f"Partner {partner} is not enabled for workspace {workspace_id}")
    uow.partners.expire_data_import_keys(
        workspace_id=workspace_id, partner=partner, at=now + max(0.0, grace_seconds)
    )
    key = keys.new_key()
    uow.partners.add_data_import_key(
        workspace_id=workspace_id, partner=partner, key_hash=keys.hash_key(key), now=now
    )
    uow.commit()
    return key


def authenticate_partner(
    *, uow: PartnerUnitOfWork, partner: str, partner_api_key: object, client_secret: object, now: float
) -> PartnerCaller:
    """Check a partner request's two keys in the documented order; raise the documented 401s."""
    get_partner(partner)
    if not isinstance(partner_api_key, str) or not partner_api_key:
        raise InvalidPartnerApiKey()
    pkey = uow.partners.partner_key_by_hash(keys.hash_key(partner_api_key))
    if pkey is None or pkey.partner != partner or not pkey.active(now):
        raise InvalidPartnerApiKey()
    if not isinstance(client_secret, str) or not client_secret:
        raise InvalidClientSecret()
    dkey = uow.partners.data_import_key_by_hash(keys.hash_key(client_secret))
    if dkey is None or not dkey.active(now):
        raise InvalidClientSecret()
    if dkey.partner != partner or not uow.partners.integration_enabled(dkey.workspace_id, partner):
        raise PartnerNotEnabled(client_secret)
    return PartnerCaller(partner=partner, workspace_id=dkey.workspace_id, partner_key_id=pkey.id)


def charge_quota(*, uow: PartnerUnitOfWork, caller: PartnerCaller, quota: int, now: float) -> None:
    """Count one request against the partner key's hourly quota; raise 429 past it.

    Runs inside the request's own transaction, so a rejected request is not counted.
    """
    start, retry_after = hour_window(now)
    used = uow.partners.count_request(key_id=caller.partner_key_id, window_start=start)
    if used > quota:
        raise PartnerQuotaExceeded(
            f"Rate limit of {quota} requests per hour exceeded for this partner API key",
            retry_after=retry_after,
        )
