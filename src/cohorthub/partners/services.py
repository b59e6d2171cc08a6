"""Partner use cases: issue and rotate keys, enable and disable, authenticate requests."""

from __future__ import annotations

from dataclasses import dataclass

from cohorthub import keys
from cohorthub.partners.errors import (
    InvalidAuthMode,
    InvalidClientSecret,
    InvalidPartnerApiKey,
    InvalidPartnerKeyValue,
    PartnerAlreadyEnabled,
    PartnerKeyAlreadyRegistered,
    PartnerNotConfigured,
    PartnerNotEnabled,
    PartnerQuotaExceeded,
    UnknownPartner,
)
from cohorthub.partners.model import (
    AUTH_DATA_IMPORT_KEY_ONLY,
    AUTH_MODES,
    AUTH_PARTNER_KEY,
    REGISTRY,
    Partner,
    PartnerCaller,
    PartnerKey,
    hour_window,
    key_value_problem,
)
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


def register_partner_key(*, uow: PartnerUnitOfWork, partner: str, key: str, now: float) -> PartnerKey:
    """Register a partner API key value the operator was given (e.g. the key a real Heap sends)."""
    get_partner(partner)
    if problem := key_value_problem(key):
        raise InvalidPartnerKeyValue(f"Cannot register this value: {problem}")
    key_hash = keys.hash_key(key)
    existing = uow.partners.partner_key_by_hash(key_hash)
    if existing is not None:
        raise PartnerKeyAlreadyRegistered(
            f"This key is already registered for partner {existing.partner} (key id {existing.id})"
        )
    key_id = uow.partners.add_partner_key(partner=partner, key_hash=key_hash, now=now)
    uow.commit()
    return PartnerKey(id=key_id, partner=partner, created_at=now, expires_at=None, key_hash=key_hash)


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


def enable_partner(
    *, uow: PartnerUnitOfWork, workspace_id: str, partner: str, now: float, auth_mode: str = AUTH_PARTNER_KEY
) -> Enabled:
    """Turn a partner on for a workspace and issue its data import key."""
    get_partner(partner)
    _check_mode(auth_mode)
    if uow.partners.integration_enabled(workspace_id, partner):
        raise PartnerAlreadyEnabled(
            f"Partner {partner} is already enabled for workspace {workspace_id}; "
            "use `partner rotate-key` for a new data import key"
        )
    uow.partners.expire_data_import_keys(workspace_id=workspace_id, partner=partner, at=now)
    uow.partners.set_integration(workspace_id=workspace_id, partner=partner, enabled=True, now=now)
    uow.partners.set_auth_mode(workspace_id=workspace_id, partner=partner, mode=auth_mode, now=now)
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


def set_auth_mode(*, uow: PartnerUnitOfWork, workspace_id: str, partner: str, mode: str, now: float) -> None:
    """Choose how the partner's requests for this workspace authenticate (docs/connecting.md)."""
    get_partner(partner)
    _check_mode(mode)
    if uow.partners.integration_enabled(workspace_id, partner) is None:
        raise PartnerNotConfigured(f"Partner {partner} was never enabled for workspace {workspace_id}")
    uow.partners.set_auth_mode(workspace_id=workspace_id, partner=partner, mode=mode, now=now)
    uow.commit()


def _check_mode(mode: str) -> None:
    if mode not in AUTH_MODES:
        raise InvalidAuthMode(f"Unknown authentication mode {mode!r}; use one of: {', '.join(AUTH_MODES)}")


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
    if (
        pkey is None
        or pkey.partner != partner
        or not pkey.active(now)
        or not keys.matches(partner_api_key, pkey.key_hash)
    ):
        return _by_data_import_key_alone(uow, partner, partner_api_key, client_secret, now)
    if not isinstance(client_secret, str) or not client_secret:
        raise InvalidClientSecret()
    dkey = uow.partners.data_import_key_by_hash(keys.hash_key(client_secret))
    if dkey is None or not dkey.active(now):
        raise InvalidClientSecret()
    if dkey.partner != partner or not uow.partners.integration_enabled(dkey.workspace_id, partner):
        raise PartnerNotEnabled(client_secret)
    return PartnerCaller(partner=partner, workspace_id=dkey.workspace_id, partner_key_id=pkey.id)


def _by_data_import_key_alone(
    uow: PartnerUnitOfWork, partner: str, partner_api_key: str, client_secret: object, now: float
) -> PartnerCaller:
    """Accept an unregistered partner key where the integration opted in, else `Invalid Partner API key`."""
    if not isinstance(client_secret, str) or not client_secret:
        raise InvalidPartnerApiKey()
    dkey = uow.partners.data_import_key_by_hash(keys.hash_key(client_secret))
    if dkey is None or not dkey.active(now) or dkey.partner != partner:
        raise InvalidPartnerApiKey()
    integration = uow.partners.integration(dkey.workspace_id, partner)
    if integration is None or not integration.enabled or integration.auth_mode != AUTH_DATA_IMPORT_KEY_ONLY:
        raise InvalidPartnerApiKey()
    return PartnerCaller(
        partner=partner,
        workspace_id=dkey.workspace_id,
        partner_key_id=-dkey.id,
        presented_fingerprint=keys.fingerprint(partner_api_key),
    )


def charge_quota(*, uow: PartnerUnitOfWork, caller: PartnerCaller, quota: int, now: float) -> None:
    """Count one request against the partner key's hourly quota; raise 429 past it.

    Runs inside the request's own transaction, so a rejected request is not counted. A request
    accepted by its data import key alone also records the fingerprint of the partner key it presented.
    """
    start, retry_after = hour_window(now)
    if caller.presented_fingerprint is not None:
        uow.partners.record_sighting(
            workspace_id=caller.workspace_id,
            partner=caller.partner,
            fingerprint=caller.presented_fingerprint,
            now=now,
        )
    used = uow.partners.count_request(key_id=caller.partner_key_id, window_start=start)
    if used > quota:
        raise PartnerQuotaExceeded(
            f"Rate limit of {quota} requests per hour exceeded for this partner API key",
            retry_after=retry_after,
        )
