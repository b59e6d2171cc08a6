"""SQL repository for dashboard accounts, sessions and failed sign-ins (tables of 0010_dashboard)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)

from cohorthub.accounts.model import Account, Session

_meta = MetaData()  # the migration creates these tables; this metadata only describes them
_Id = BigInteger().with_variant(Integer(), "sqlite")
_MAX_ID = 2**63 - 1

accounts = Table(
    "accounts",
    _meta,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("language", String(8)),
    Column("password_hash", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)
account_sessions = Table(
    "account_sessions",
    _meta,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", _Id, nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("workspace_id", String(32)),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)
sign_in_failures = Table(
    "sign_in_failures",
    _meta,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("key", String(300), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_sign_in_failures_key_at", "key", "at"),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)


class SqlAccountRepository:
    """Accounts, sessions and failed sign-ins in SQL."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, *, email: str, role: str, password_hash: str, now: float) -> int:
        """Insert an account; return its id."""
        result = self._conn.execute(
            insert(accounts)
            .values(email=email, role=role, password_hash=password_hash, created_at=now)
            .returning(accounts.c.id)
        )
        return int(result.scalar_one())

    def get(self, account_id: int) -> Account | None:
        """The account with that id, if any."""
        row = self._conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
        return _account(row) if row else None

    def by_email(self, email: str) -> Account | None:
        """The account with that (normalized) e-mail, if any."""
        row = self._conn.execute(select(accounts).where(accounts.c.email == email)).first()
        return _account(row) if row else None

    def all(self) -> list[Account]:
        """Every account, oldest first."""
        return [_account(r) for r in self._conn.execute(select(accounts).order_by(accounts.c.id))]

    def set_role(self, account_id: int, role: str) -> bool:
        """Change the role; False when no such account."""
        if not 0 < account_id <= _MAX_ID:  # no row has it (and SQLite cannot compare it: OverflowError)
            return False
        result = self._conn.execute(update(accounts).where(accounts.c.id == account_id).values(role=role))
        return result.rowcount == 1

    def set_language(self, account_id: int, language: str | None) -> None:
        """Change the preferred language."""
        self._conn.execute(update(accounts).where(accounts.c.id == account_id).values(language=language))

    def set_password_hash(self, account_id: int, password_hash: str) -> None:
        """Replace the password hash."""
        self._conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(password_hash=password_hash)
        )

    def add_session(self, session: Session) -> None:
        """Store a session."""
        self._conn.execute(
            insert(account_sessions).values(
                token_hash=session.token_hash,
                account_id=session.account_id,
                csrf_token=session.csrf_token,
                workspace_id=session.workspace_id,
                created_at=session.created_at,
                expires_at=session.expires_at,
            )
        )

    def session(self, token_hash: str) -> Session | None:
        """The session stored under that token hash, if any."""
        row = self._conn.execute(
            select(account_sessions).where(account_sessions.c.token_hash == token_hash)
        ).first()
        if row is None:
            return None
        return Session(
            token_hash=row.token_hash,
            account_id=row.account_id,
            csrf_token=row.csrf_token,
            workspace_id=row.workspace_id,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )

    def set_session_workspace(self, token_hash: str, workspace_id: str) -> None:
        """Remember the session's workspace."""
        self._conn.execute(
            update(account_sessions)
            .where(account_sessions.c.token_hash == token_hash)
            .values(workspace_id=workspace_id)
        )

    def delete_session(self, token_hash: str) -> None:
        """Forget a session."""
        self._conn.execute(delete(account_sessions).where(account_sessions.c.token_hash == token_hash))

    def delete_sessions_of(self, account_id: int) -> None:
        """Forget every session of an account."""
        self._conn.execute(delete(account_sessions).where(account_sessions.c.account_id == account_id))

    def record_failure(self, *, key: str, now: float) -> None:
        """Count one failed sign-in under `key`."""
        self._conn.execute(insert(sign_in_failures).values(key=key[:300], at=now))

    def failures(self, key: str, *, since: float) -> list[float]:
        """When the failed sign-ins under `key` since `since` happened."""
        rows = self._conn.execute(
            select(sign_in_failures.c.at).where(
                sign_in_failures.c.key == key[:300], sign_in_failures.c.at > since
            )
        )
        return [r.at for r in rows]

    def forget_failures(self, key: str) -> None:
        """Clear the failures under `key` (after a successful sign-in)."""
        self._conn.execute(delete(sign_in_failures).where(sign_in_failures.c.key == key[:300]))


def _account(row: Any) -> Account:
    return Account(
        id=row.id,
        email=row.email,
        role=row.role,
        language=row.language,
        password_hash=row.password_hash,
        created_at=row.created_at,
    )
