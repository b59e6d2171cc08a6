"""Account rules: roles and what they allow, e-mail and password checks, the sign-in limit."""

from __future__ import annotations

import pytest

from cohorthub.accounts.errors import InvalidAccount
from cohorthub.accounts.model import (
    FAILURE_WINDOW,
    MAX_FAILURES,
    allows,
    check_password,
    check_role,
    normalize_email,
    retry_after,
)


@pytest.mark.parametrize(
    ("role", "read", "write", "admin"),
    [("admin", True, True, True), ("marketer", True, True, False), ("viewer", True, False, False)],
)
def test_roles_allow_what_they_should(role: str, read: bool, write: bool, admin: bool) -> None:
    assert (allows(role, "read"), allows(role, "write"), allows(role, "admin")) == (read, write, admin)


def test_an_unknown_role_allows_nothing_and_is_refused() -> None:
    assert not allows("owner", "read")
    with pytest.raises(InvalidAccount, match="Unknown role"):
        check_role("owner")


def test_emails_are_normalized_and_checked() -> None:
    assert normalize_email("  Ana@Example.COM ") == "ana@example.com"
    with pytest.raises(InvalidAccount):
        normalize_email("not-an-email")


def test_passwords_need_ten_characters() -> None:
    assert check_password("0123456789") == "0123456789"
    with pytest.raises(InvalidAccount):
        check_password("short")


def test_the_sign_in_limit_opens_after_the_window() -> None:
    now = 10_000.0
    failures = [now - 60 * i for i in range(MAX_FAILURES)]
    assert retry_after(failures[:-1], now) is None
    wait = retry_after(failures, now)
    assert wait is not None and 0 < wait <= FAILURE_WINDOW
    assert retry_after(failures, now + wait) is None
    assert retry_after(failures, now, limit=MAX_FAILURES + 1) is None
