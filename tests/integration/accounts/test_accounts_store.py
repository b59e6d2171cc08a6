"""Accounts on SQLite and PostgreSQL: create, sign in, sessions, sign out, the limit, roles."""

from __future__ import annotations

import argon2
import pytest

from cohorthub.accounts import services
from cohorthub.accounts.errors import (
    AccountConflict,
    InvalidCredentials,
    NotSignedIn,
    RoleForbids,
    SignInRateLimited,
)
from cohorthub.accounts.model import MAX_FAILURES, SESSION_SECONDS
from cohorthub.accounts.passwords import Argon2Hasher
from cohorthub.bootstrap import Container

NOW = 1_800_000_000.0
PASSWORD = "correct horse battery"
#: Fast parameters: these tests are about the rules, not the hash's cost.
HASHER = Argon2Hasher(argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


def _create(c: Container, email: str = "Ana@Acme.io", role: str = "marketer") -> int:
    with c.uow() as uow:
        return services.create_account(
            uow=uow, hasher=HASHER, email=email, password=PASSWORD, role=role, now=NOW
        ).id


def _sign_in(c: Container, password: str = PASSWORD, *, now: float = NOW) -> services.SignedIn:
    with c.uow() as uow:
        return services.sign_in(uow=uow, hasher=HASHER, email="ana@acme.io", password=password,
                                client="10.0.0.1", workspace_id=None, now=now)  # fmt: skip


def test_sign_in_opens_a_session_that_sign_out_ends(container: Container) -> None:
    _create(container)
    signed = _sign_in(container)
    assert signed.session.token_hash != signed.token  # only the hash is stored
    with container.uow(readonly=True) as uow:
        account, session = services.current_session(uow=uow, token=signed.token, now=NOW + 1)
    assert (account.email, account.role, session.csrf_token) == (
        "ana@acme.io",
        "marketer",
        signed.session.csrf_token,
    )
    with container.uow(readonly=True) as uow, pytest.raises(NotSignedIn):
        services.current_session(uow=uow, token=signed.token, now=NOW + SESSION_SECONDS)
    with container.uow() as uow:
        services.sign_out(uow=uow, token=signed.token)
    with container.uow(readonly=True) as uow, pytest.raises(NotSignedIn):
        services.current_session(uow=uow, token=signed.token, now=NOW + 1)


def test_an_e_mail_is_taken_once(container: Container) -> None:
    _create(container)
    with pytest.raises(AccountConflict):
        _create(container, email="ana@acme.io ")


def test_wrong_passwords_are_counted_and_then_refused_even_when_right(container: Container) -> None:
    _create(container)
    for i in range(MAX_FAILURES):
        with pytest.raises(InvalidCredentials):
            _sign_in(container, "wrong password", now=NOW + i)
    with pytest.raises(SignInRateLimited) as limited:
        _sign_in(container, now=NOW + MAX_FAILURES)
    assert limited.value.retry_after > 0
    assert _sign_in(container, now=NOW + 3600).account.email == "ana@acme.io"


def test_an_admin_changes_roles_but_not_their_own(container: Container) -> None:
    admin_id = _create(container, email="boss@acme.io", role="admin")
    other = _create(container)
    with container.uow() as uow:
        admin = services.require_account(uow=uow, account_id=admin_id)
        services.set_role(uow=uow, actor=admin, account_id=other, role="viewer")
    with container.uow() as uow:
        assert services.require_account(uow=uow, account_id=other).role == "viewer"
        with pytest.raises(RoleForbids):
            services.set_role(uow=uow, actor=admin, account_id=admin_id, role="viewer")
        marketer = services.require_account(uow=uow, account_id=other)
        with pytest.raises(RoleForbids):
            services.set_role(uow=uow, actor=marketer, account_id=admin_id, role="viewer")


def test_a_nul_e_mail_or_password_is_a_wrong_sign_in_on_both_stores(container: Container) -> None:
    for email, password in (("ana\x00@acme.io", PASSWORD), ("ana@acme.io", PASSWORD + "\x00")):
        with container.uow() as uow, pytest.raises(InvalidCredentials):
            services.sign_in(uow=uow, hasher=HASHER, email=email, password=password,
                             client="127.0.0.1", workspace_id=None, now=NOW)  # fmt: skip
