"""Accounts, roles and their permissions, sessions, the sign-in limit (pure values and rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cohorthub.accounts.errors import InvalidAccount

ROLES: tuple[str, ...] = ("admin", "marketer", "viewer")
LANGUAGES: tuple[str, ...] = ("en", "es")

#: What each role may do. `read`: see every screen; `write`: change partners, segments, connectors;
#: `admin`: accounts and REST API keys.
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "write", "admin"}),
    "marketer": frozenset({"read", "write"}),
    "viewer": frozenset({"read"}),
}

SESSION_SECONDS = 12 * 3600
#: At most this many failed sign-ins per e-mail (and, more loosely, per client address, which
#: people behind one NAT share) in the window; then 429.
MAX_FAILURES = 5
MAX_CLIENT_FAILURES = 20
FAILURE_WINDOW = 15 * 60
MIN_PASSWORD = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class Account:
    """A person who signs in to the dashboard (the password hash never leaves the store's reach)."""

    id: int
    email: str
    role: str
    language: str | None
    password_hash: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: its account, CSRF token and chosen workspace."""

    token_hash: str
    account_id: int
    csrf_token: str
    workspace_id: str | None
    created_at: float
    expires_at: float

    def active(self, now: float) -> bool:
        """Whether the session still signs its browser in at `now`."""
        return now < self.expires_at


def allows(role: str, action: str) -> bool:
    """Whether `role` may perform `action` (read, write, admin)."""
    return action in ROLE_ACTIONS.get(role, frozenset())


def normalize_email(email: str) -> str:
    """The e-mail as stored and compared: trimmed and lower-cased; `InvalidAccount` if malformed."""
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise InvalidAccount(f"Not an e-mail address: {email!r}")
    return email


def check_role(role: str) -> str:
    """The role, or `InvalidAccount` naming the known ones."""
    if role not in ROLES:
        raise InvalidAccount(f"Unknown role {role!r}; known: {', '.join(ROLES)}")
    return role


def check_language(language: str) -> str:
    """The language code, or `InvalidAccount`."""
    if language not in LANGUAGES:
        raise InvalidAccount(f"Unknown language {language!r}; known: {', '.join(LANGUAGES)}")
    return language


def check_password(password: str) -> str:
    """The password if long enough, or `InvalidAccount`."""
    if len(password) < MIN_PASSWORD or len(password) > 1024:
        raise InvalidAccount(f"A password needs {MIN_PASSWORD} to 1024 characters")
    return password


def retry_after(failure_times: list[float], now: float, *, limit: int = MAX_FAILURES) -> int | None:
    """Seconds until another sign-in may be tried, or None while under `limit` recent failures."""
    recent = sorted(t for t in failure_times if t > now - FAILURE_WINDOW)
    if len(recent) < limit:
        return None
    return max(1, int(recent[-limit] + FAILURE_WINDOW - now + 0.999))
