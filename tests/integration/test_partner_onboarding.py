"""Onboarding a real partner: registered key values, the data-import-key-only mode, the REST endpoint."""

from __future__ import annotations

import pytest

from cohorthub import keys
from cohorthub.bootstrap import Container
from cohorthub.partners import overview
from cohorthub.partners import services as partners
from cohorthub.partners.errors import (
    InvalidAuthMode,
    InvalidPartnerApiKey,
    InvalidPartnerKeyValue,
    PartnerKeyAlreadyRegistered,
    PartnerNotConfigured,
)
from cohorthub.partners.model import AUTH_DATA_IMPORT_KEY_ONLY, AUTH_PARTNER_KEY, PartnerCaller
from cohorthub.workspaces import services as workspaces

NOW = 1_800_000_000.0
HEAP_KEY = "hp_live_0123456789abcdefABCDEF"  # a value the partner was issued elsewhere


def _workspace(c: Container, *, mode: str = AUTH_PARTNER_KEY) -> tuple[str, str]:
    with c.uow() as uow:
        ws, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    with c.uow() as uow:
        enabled = partners.enable_partner(
            uow=uow, workspace_id=ws.id, partner="heap", now=NOW, auth_mode=mode
        )
    return ws.id, enabled.data_import_key


def _auth(c: Container, pk: object, cs: object) -> PartnerCaller:
    with c.uow() as uow:
        caller = partners.authenticate_partner(
            uow=uow, partner="heap", partner_api_key=pk, client_secret=cs, now=NOW
        )
        partners.charge_quota(uow=uow, caller=caller, quota=100, now=NOW)
        uow.commit()
    return caller


def test_a_registered_key_value_authenticates_and_is_stored_hashed(container: Container) -> None:
    ws, dik = _workspace(container)
    with container.uow() as uow:
        key = partners.register_partner_key(uow=uow, partner="heap", key=HEAP_KEY, now=NOW)
    assert key.key_hash == keys.hash_key(HEAP_KEY) != HEAP_KEY
    assert _auth(container, HEAP_KEY, dik).workspace_id == ws
    with container.uow(readonly=True) as uow:
        shown = overview.describe_partner(uow=uow, partner="heap", workspace_id=None, now=NOW)
    assert [k.fingerprint for k in shown.keys] == [keys.fingerprint(HEAP_KEY)]


def test_registering_twice_or_a_bad_value_is_refused(container: Container) -> None:
    with container.uow() as uow:
        partners.register_partner_key(uow=uow, partner="heap", key=HEAP_KEY, now=NOW)
    with container.uow() as uow, pytest.raises(PartnerKeyAlreadyRegistered, match="already registered"):
        partners.register_partner_key(uow=uow, partner="mixpanel", key=HEAP_KEY, now=NOW)
    for bad in ("short", "has a space in the middle of it", "x" * 300):
        with container.uow() as uow, pytest.raises(InvalidPartnerKeyValue):
            partners.register_partner_key(uow=uow, partner="heap", key=bad, now=NOW)


def test_an_unregistered_partner_key_is_refused_by_default(container: Container) -> None:
    _, dik = _workspace(container)
    with pytest.raises(InvalidPartnerApiKey):
        _auth(container, HEAP_KEY, dik)


def test_data_import_key_only_accepts_any_partner_key_and_records_its_fingerprint(
    container: Container,
) -> None:
    ws, dik = _workspace(container, mode=AUTH_DATA_IMPORT_KEY_ONLY)
    for _ in range(2):
        caller = _auth(container, HEAP_KEY, dik)
    assert caller.workspace_id == ws
    with container.uow(readonly=True) as uow:
        shown = overview.describe_partner(uow=uow, partner="heap", workspace_id=ws, now=NOW)
    (integration,) = shown.integrations
    assert integration.integration.auth_mode == AUTH_DATA_IMPORT_KEY_ONLY
    assert [(s.fingerprint, s.requests) for s in integration.sightings] == [(keys.fingerprint(HEAP_KEY), 2)]


def test_data_import_key_only_still_needs_a_valid_enabled_data_import_key(container: Container) -> None:
    ws, dik = _workspace(container, mode=AUTH_DATA_IMPORT_KEY_ONLY)
    with pytest.raises(InvalidPartnerApiKey):
        _auth(container, HEAP_KEY, "not-a-data-import-key")
    with pytest.raises(InvalidPartnerApiKey):
        _auth(container, "", dik)
    with container.uow() as uow:
        partners.disable_partner(uow=uow, workspace_id=ws, partner="heap", now=NOW)
    with pytest.raises(InvalidPartnerApiKey):
        _auth(container, HEAP_KEY, dik)


def test_the_mode_can_be_switched_off_again(container: Container) -> None:
    ws, dik = _workspace(container, mode=AUTH_DATA_IMPORT_KEY_ONLY)
    with container.uow() as uow:
        partners.set_auth_mode(uow=uow, workspace_id=ws, partner="heap", mode=AUTH_PARTNER_KEY, now=NOW)
    with pytest.raises(InvalidPartnerApiKey):
        _auth(container, HEAP_KEY, dik)
    with container.uow() as uow, pytest.raises(InvalidAuthMode):
        partners.set_auth_mode(uow=uow, workspace_id=ws, partner="heap", mode="trust-all", now=NOW)
    with container.uow() as uow, pytest.raises(PartnerNotConfigured):
        partners.set_auth_mode(uow=uow, workspace_id=ws, partner="mixpanel", mode=AUTH_PARTNER_KEY, now=NOW)


def test_the_rest_endpoint_is_what_serve_recorded_unless_configured(container: Container) -> None:
    with container.uow(readonly=True) as uow:
        assert overview.rest_endpoint(uow=uow, configured=None).url is None
    with container.uow() as uow:
        overview.record_server_addresses(
            uow=uow, listen_url="http://127.0.0.1:9123", public_url=None, now=NOW
        )
    with container.uow(readonly=True) as uow:
        assert overview.rest_endpoint(uow=uow, configured=None).url == "http://127.0.0.1:9123"
        assert overview.rest_endpoint(uow=uow, configured="https://x.test/").url == "https://x.test"
    with container.uow() as uow:
        overview.record_server_addresses(
            uow=uow, listen_url="http://127.0.0.1:9123", public_url="https://hub.test", now=NOW
        )
    with container.uow(readonly=True) as uow:
        assert overview.rest_endpoint(uow=uow, configured=None).url == "https://hub.test"
