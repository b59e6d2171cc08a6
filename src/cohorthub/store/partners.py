"""SQL repository for partner keys, integrations, data import keys and quota counters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cohorthub.partners.model import DataImportKey, PartnerKey
from cohorthub.store.tables import data_import_keys, partner_api_keys, partner_integrations, rate_windows


class SqlPartnerRepository:
    """Partner credentials in SQL."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add_partner_key(self, *, partner: str, key_hash: str, now: float) -> int:
        """Store a partner key hash; return its id."""
        result = self._conn.execute(
            insert(partner_api_keys)
            .values(partner=partner, key_hash=key_hash, created_at=now)
            .returning(partner_api_keys.c.id)
        )
        return int(result.scalar_one())

    def partner_key_by_hash(self, key_hash: str) -> PartnerKey | None:
        """The partner key stored under that hash, if any."""
        row = self._conn.execute(
            select(partner_api_keys).where(partner_api_keys.c.key_hash == key_hash)
        ).first()
        if row is None:
            return None
        return PartnerKey(
            id=row.id, partner=row.partner, created_at=row.created_at, expires_at=row.expires_at
        )

    def expire_partner_keys(self, *, partner: str, at: float) -> int:
        """Make every key of `partner` expire at `at` (keeping an earlier expiry)."""
        table = partner_api_keys
        return self._expire(table, table.c.partner == partner, at)

    def integration_enabled(self, workspace_id: str, partner: str) -> bool | None:
        """True/False when configured, None when the partner was never enabled."""
        value = self._conn.execute(
            select(partner_integrations.c.enabled).where(
                partner_integrations.c.workspace_id == workspace_id, partner_integrations.c.partner == partner
            )
        ).scalar()
        return None if value is None else bool(value)

    def set_integration(self, *, workspace_id: str, partner: str, enabled: bool, now: float) -> None:
        """Create or update the integration row."""
        values = {"workspace_id": workspace_id, "partner": partner, "enabled": enabled, "updated_at": now}
        stmt = _upsert(self._conn)(partner_integrations).values(**values)
        self._conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["workspace_id", "partner"], set_={"enabled": enabled, "updated_at": now}
            )
        )

    def add_data_import_key(self, *, workspace_id: str, partner: str, key_hash: str, now: float) -> int:
        """Store a data import key hash; return its id."""
        result = self._conn.execute(
            insert(data_import_keys)
            .values(workspace_id=workspace_id, partner=partner, key_hash=key_hash, created_at=now)
            .returning(data_import_keys.c.id)
        )
        return int(result.scalar_one())

    def data_import_key_by_hash(self, key_hash: str) -> DataImportKey | None:
        """The data import key stored under that hash, if any."""
        row = self._conn.execute(
            select(data_import_keys).where(data_import_keys.c.key_hash == key_hash)
        ).first()
        if row is None:
            return None
        return DataImportKey(
            id=row.id,
            workspace_id=row.workspace_id,
            partner=row.partner,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )

    def expire_data_import_keys(self, *, workspace_id: str, partner: str, at: float) -> int:
        """Make every data import key of the pair expire at `at` (keeping an earlier expiry)."""
        table = data_import_keys
        return self._expire(table, and_(table.c.workspace_id == workspace_id, table.c.partner == partner), at)

    def count_request(self, *, key_id: int, window_start: int) -> int:
        """Add one to the key's counter for the window; return the new count."""
        stmt = _upsert(self._conn)(rate_windows).values(key_id=key_id, window_start=window_start, count=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key_id", "window_start"], set_={"count": rate_windows.c.count + 1}
        ).returning(rate_windows.c.count)
        return int(self._conn.execute(stmt).scalar_one())

    def _expire(self, table: Any, where: Any, at: float) -> int:
        result = self._conn.execute(
            update(table)
            .where(where, or_(table.c.expires_at.is_(None), table.c.expires_at > at))
            .values(expires_at=at)
        )
        return int(result.rowcount)


def _upsert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
