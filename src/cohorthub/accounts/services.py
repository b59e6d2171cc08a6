"""Account use cases: create, sign in (rate-limited), sessions, roles, language, workspace choice."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cohorthub import keys
from cohorthub.accounts.errors import (
    AccountConflict,
    AccountNotFound,
    InvalidCredentials,
    NotSignedIn,
    RoleForbids,
    SignInRateLimited,
)
from cohorthub.accounts.model import (
    FAILURE_WINDOW,
    MAX_CLIENT_FAILURES,
    MAX_FAILURES,
    SESSION_SECONDS,
    Account,
    Session,
    allows,
    check_language,
    check_password,
    check_role,
    normalize_email,
    retry_after,
)
from cohorthub.accounts.ports import AccountUnitOfWork, PasswordHasher
from cohorthub.text import storable_problem


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: the token goes to the browser's cookie, only its hash is stored."""

    account: Account
    token: str
    session: Session


def create_account(
    *, uow: AccountUnitOfWork, hasher: PasswordHasher, email: str, password: str, role: str, now: float
) -> Account:
    """Create an account; 409 when the e-mail is taken."""
    email, role = normalize_email(email), check_role(role)
    password_hash = hasher.hash(check_password(password))
    if uow.accounts.by_email(email) is not None:
        raise AccountConflict(f"An account with e-mail {email} exists")
    account_id = uow.accounts.add(email=email, role=role, password_hash=password_hash, now=now)
    uow.commit()
    return require_account(uow=uow, account_id=account_id)


def require_account(*, uow: AccountUnitOfWork, account_id: int) -> Account:
    """The account, or `AccountNotFound`."""
    account = uow.accounts.get(account_id)
    if account is None:
        raise AccountNotFound(f"No account with id {account_id}")
    return account


def list_accounts(*, uow: AccountUnitOfWork) -> list[Account]:
    """Every account, oldest first."""
    return uow.accounts.all()


def sign_in(
    *,
    uow: AccountUnitOfWork,
    hasher: PasswordHasher,
    email: str,
    password: str,
    client: str,
    workspace_id: str | None,
    now: float,
) -> SignedIn:
    """Check the password and open a session; failures are counted per e-mail and per client."""
    email = email.strip().lower()
    if storable_problem(email) or storable_problem(password):  # no account can have it: nothing to look up
        hasher.hash("")  # costs as long as a wrong password
        raise InvalidCredentials("Wrong e-mail or password")
    limits = {f"email:{email}": MAX_FAILURES, f"client:{client}": MAX_CLIENT_FAILURES}
    limit_keys = list(limits)
    since = now - FAILURE_WINDOW
    waits = [
        w
        for k, n in limits.items()
        if (w := retry_after(uow.accounts.failures(k, since=since), now, limit=n))
    ]
    if waits:
        raise SignInRateLimited("Too many failed sign-ins; try again later", retry_after=max(waits))
    account = uow.accounts.by_email(email)
    if account is None:
        hasher.hash(password)  # an unknown e-mail costs as long as a wrong password
    if account is None or not hasher.verify(account.password_hash, password):
        for key in limit_keys:
            uow.accounts.record_failure(key=key, now=now)
        uow.commit()
        raise InvalidCredentials("Wrong e-mail or password")
    uow.accounts.forget_failures(limit_keys[0])
    token = secrets.token_urlsafe(32)
    session = Session(
        token_hash=keys.hash_key(token),
        account_id=account.id,
        csrf_token=secrets.token_urlsafe(32),
        workspace_id=workspace_id,
        created_at=now,
        expires_at=now + SESSION_SECONDS,
    )
    uow.accounts.add_session(session)
    uow.commit()
    return SignedIn(account=account, token=token, session=session)


def current_session(*, uow: AccountUnitOfWork, token: str | None, now: float) -> tuple[Account, Session]:
    """The signed-in account and its session, or `NotSignedIn`."""
    session = uow.accounts.session(keys.hash_key(token)) if token else None
    if session is None or not session.active(now):
        raise NotSignedIn("Please sign in")
    account = uow.accounts.get(session.account_id)
    if account is None:
        raise NotSignedIn("Please sign in")
    return account, session


def sign_out(*, uow: AccountUnitOfWork, token: str) -> None:
    """End the session (idempotent)."""
    uow.accounts.delete_session(keys.hash_key(token))
    uow.commit()


def choose_workspace(*, uow: AccountUnitOfWork, token: str, workspace_id: str) -> None:
    """Remember the workspace this session works in."""
    uow.accounts.set_session_workspace(keys.hash_key(token), workspace_id)
    uow.commit()


def set_language(*, uow: AccountUnitOfWork, account_id: int, language: str | None) -> None:
    """Set the account's language (None: follow the browser)."""
    uow.accounts.set_language(account_id, check_language(language) if language else None)
    uow.commit()


def set_role(*, uow: AccountUnitOfWork, actor: Account, account_id: int, role: str) -> None:
    """Change an account's role (admins only; an admin cannot demote themself)."""
    require_action(actor, "admin")
    check_role(role)
    if account_id == actor.id and role != "admin":
        raise RoleForbids("An admin cannot take away their own admin role")
    if not uow.accounts.set_role(account_id, role):
        raise AccountNotFound(f"No account with id {account_id}")
    uow.commit()


def require_action(account: Account, action: str) -> None:
    """Raise `RoleForbids` unless the account's role allows `action`."""
    if not allows(account.role, action):
        raise RoleForbids(f"The {account.role} role cannot do this")
