"""Workspaces, partner keys and data import keys on both stores."""

from __future__ import annotations

import pytest

from cohorthub.bootstrap import Container
from cohorthub.partners import services as partners
from cohorthub.partners.errors import (
    InvalidClientSecret,
    InvalidPartnerApiKey,
    PartnerAlreadyEnabled,
    PartnerNotEnabled,
    PartnerQuotaExceeded,
    UnknownPartner,
)
from cohorthub.workspaces import services as workspaces
from cohorthub.workspaces.errors import InvalidApiKey, InvalidWorkspace, PermissionDenied

NOW = 1_800_000_000.0


def _setup(c: Container) -> tuple[str, str, str]:
    with c.uow() as uow:
        ws, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    with c.uow() as uow:
        pk = partners.issue_partner_key(uow=uow, partner="heap", now=NOW)
    with c.uow() as uow:
        dik = partners.enable_partner(uow=uow, workspace_id=ws.id, partner="heap", now=NOW).data_import_key
    return ws.id, pk, dik


def _auth(c: Container, pk: object, cs: object, *, partner: str = "heap", now: float = NOW) -> str:
    with c.uow(readonly=True) as uow:
        return partners.authenticate_partner(
            uow=uow, partner=partner, partner_api_key=pk, client_secret=cs, now=now
        ).workspace_id


def test_valid_keys_identify_the_workspace(container: Container) -> None:
    ws, pk, dik = _setup(container)
    assert _auth(container, pk, dik) == ws


@pytest.mark.parametrize(
    ("which", "error", "message"),
    [
        ("pk", InvalidPartnerApiKey, "Invalid Partner API key"),
        ("cs", InvalidClientSecret, "Invalid client secret"),
    ],
)
def test_wrong_keys_get_the_documented_texts(
    container: Container, which: str, error: type, message: str
) -> None:
    _, pk, dik = _setup(container)
    args = ("nope", dik) if which == "pk" else (pk, "nope")
    with pytest.raises(error) as info:
        _auth(container, *args)
    assert info.value.message == message


def test_non_string_keys_are_rejected(container: Container) -> None:
    _, pk, _ = _setup(container)
    with pytest.raises(InvalidPartnerApiKey):
        _auth(container, 123, "x")
    with pytest.raises(InvalidClientSecret):
        _auth(container, pk, None)


def test_partner_key_of_another_partner_is_invalid(container: Container) -> None:
    ws, _, _ = _setup(container)
    with container.uow() as uow:
        mixpanel_key = partners.issue_partner_key(uow=uow, partner="mixpanel", now=NOW)
    with container.uow() as uow:
        dik = partners.enable_partner(uow=uow, workspace_id=ws, partner="mixpanel", now=NOW).data_import_key
    with pytest.raises(InvalidPartnerApiKey):
        _auth(container, mixpanel_key, dik, partner="heap")


def test_disabled_partner_echoes_the_secret(container: Container) -> None:
    ws, pk, dik = _setup(container)
    with container.uow() as uow:
        partners.disable_partner(uow=uow, workspace_id=ws, partner="heap", now=NOW)
    with pytest.raises(PartnerNotEnabled) as info:
        _auth(container, pk, dik)
    assert info.value.message == f"Partner not enabled for client with client secret: {dik}"


def test_secret_of_another_partner_is_not_enabled(container: Container) -> None:
    _ws, _, dik = _setup(container)
    with container.uow() as uow:
        mixpanel_key = partners.issue_partner_key(uow=uow, partner="mixpanel", now=NOW)
    with pytest.raises(PartnerNotEnabled):
        _auth(container, mixpanel_key, dik, partner="mixpanel")


def test_enable_twice_is_a_conflict_and_reenable_issues_a_fresh_key(container: Container) -> None:
    ws, pk, dik = _setup(container)
    with container.uow() as uow, pytest.raises(PartnerAlreadyEnabled):
        partners.enable_partner(uow=uow, workspace_id=ws, partner="heap", now=NOW)
    with container.uow() as uow:
        partners.disable_partner(uow=uow, workspace_id=ws, partner="heap", now=NOW)
    with container.uow() as uow:
        fresh = partners.enable_partner(uow=uow, workspace_id=ws, partner="heap", now=NOW + 1).data_import_key
    assert _auth(container, pk, fresh, now=NOW + 2) == ws
    with pytest.raises(InvalidClientSecret):
        _auth(container, pk, dik, now=NOW + 2)


def test_rotation_keeps_the_old_key_for_the_grace_period(container: Container) -> None:
    ws, pk, dik = _setup(container)
    with container.uow() as uow:
        new = partners.rotate_data_import_key(
            uow=uow, workspace_id=ws, partner="heap", now=NOW, grace_seconds=3600
        )
    assert _auth(container, pk, dik, now=NOW + 3599) == ws
    assert _auth(container, pk, new, now=NOW + 3601) == ws
    with pytest.raises(InvalidClientSecret):
        _auth(container, pk, dik, now=NOW + 3601)


def test_partner_key_rotation_with_zero_grace_invalidates_at_once(container: Container) -> None:
    ws, pk, dik = _setup(container)
    with container.uow() as uow:
        new_pk = partners.rotate_partner_key(uow=uow, partner="heap", now=NOW, grace_seconds=0)
    with pytest.raises(InvalidPartnerApiKey):
        _auth(container, pk, dik, now=NOW)
    assert _auth(container, new_pk, dik, now=NOW) == ws


def test_unknown_partner(container: Container) -> None:
    with container.uow() as uow, pytest.raises(UnknownPartner):
        partners.issue_partner_key(uow=uow, partner="nosuch", now=NOW)


def test_quota_counts_per_hour_and_resets(container: Container) -> None:
    _ws, pk, dik = _setup(container)
    with container.uow(readonly=True) as uow:
        caller = partners.authenticate_partner(
            uow=uow, partner="heap", partner_api_key=pk, client_secret=dik, now=NOW
        )
    for _ in range(3):
        with container.uow() as uow:
            partners.charge_quota(uow=uow, caller=caller, quota=3, now=NOW)
            uow.commit()
    with container.uow() as uow, pytest.raises(PartnerQuotaExceeded) as info:
        partners.charge_quota(uow=uow, caller=caller, quota=3, now=NOW)
    assert 1 <= info.value.retry_after <= 3600
    with container.uow() as uow:
        partners.charge_quota(uow=uow, caller=caller, quota=3, now=NOW + 3600)


def test_rest_keys_carry_permissions(container: Container) -> None:
    with container.uow() as uow:
        ws, full = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    with container.uow() as uow:
        narrow = workspaces.create_rest_key(
            uow=uow, workspace_id=ws.id, name="n", permissions=["cohorts.read"], now=NOW
        )
    with container.uow(readonly=True) as uow:
        assert (
            workspaces.authenticate_rest_key(uow=uow, key=full.key, permission="users.track").workspace_id
            == ws.id
        )
        assert workspaces.authenticate_rest_key(uow=uow, key=narrow.key, permission="cohorts.read")
        with pytest.raises(PermissionDenied):
            workspaces.authenticate_rest_key(uow=uow, key=narrow.key, permission="users.track")
        with pytest.raises(InvalidApiKey):
            workspaces.authenticate_rest_key(uow=uow, key="nope", permission="cohorts.read")
    with container.uow() as uow:
        workspaces.revoke_rest_key(uow=uow, key_id=narrow.id, now=NOW)
    with container.uow(readonly=True) as uow, pytest.raises(InvalidApiKey):
        workspaces.authenticate_rest_key(uow=uow, key=narrow.key, permission="cohorts.read")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("k" * 201, "must be 1 to 200 characters"),
        (" ", "must be 1 to 200 characters"),
        ("k\x00", "must not contain NUL"),
    ],
)
def test_a_rest_key_name_that_no_store_can_hold_is_refused_alike(
    container: Container, name: str, problem: str
) -> None:
    with container.uow() as uow:
        ws, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    with (
        container.uow() as uow,
        pytest.raises(InvalidWorkspace, match=f"Key name {problem}"),
    ):
        workspaces.create_rest_key(
            uow=uow, workspace_id=ws.id, name=name, permissions=["users.track"], now=NOW
        )
    with container.uow(readonly=True) as uow:
        assert [k.name for k in workspaces.list_rest_keys(uow=uow, workspace_id=ws.id)] == ["default"]
