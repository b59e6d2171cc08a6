"""SQL repository for partner keys, integrations, data import keys and quota counters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cohorthub.partners.model import DataImportKey, Integration, KeySighting, PartnerKey
from cohorthub.store.partner_auth_tables import partner_key_sightings, server_addresses
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
        return None if row is None else _partner_key(row)

    def partner_keys(self, partner: str) -> list[PartnerKey]:
        """Every key of `partner`, oldest first."""
        rows = self._conn.execute(
            select(partner_api_keys)
            .where(partner_api_keys.c.partner == partner)
            .order_by(partner_api_keys.c.id)
        )
        return [_partner_key(row) for row in rows]

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

    def integration(self, workspace_id: str, partner: str) -> Integration | None:
        """The integration row of the pair, if any."""
        t = partner_integrations
        row = self._conn.execute(
            select(t).where(t.c.workspace_id == workspace_id, t.c.partner == partner)
        ).first()
        return None if row is None else _integration(row)

    def integrations(self, partner: str) -> list[Integration]:
        """Every workspace's integration with `partner`."""
        t = partner_integrations
        rows = self._conn.execute(select(t).where(t.c.partner == partner).order_by(t.c.workspace_id))
        return [_integration(row) for row in rows]

    def set_auth_mode(self, *, workspace_id: str, partner: str, mode: str, now: float) -> None:
        """Change the authentication mode of an existing integration."""
        t = partner_integrations
        self._conn.execute(
            update(t)
            .where(t.c.workspace_id == workspace_id, t.c.partner == partner)
            .values(auth_mode=mode, updated_at=now)
        )

    def record_sighting(self, *, workspace_id: str, partner: str, fingerprint: str, now: float) -> None:
        """Count one request that presented the partner key with this fingerprint."""
        t = partner_key_sightings
        stmt = _upsert(self._conn)(t).values(
            workspace_id=workspace_id, partner=partner, fingerprint=fingerprint,
            first_seen=now, last_seen=now, requests=1,
        )  # fmt: skip
        self._conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["workspace_id", "partner", "fingerprint"],
                set_={"last_seen": now, "requests": t.c.requests + 1},
            )
        )

    def sightings(self, workspace_id: str, partner: str) -> list[KeySighting]:
        """The partner key fingerprints seen for the pair, most recent first."""
        t = partner_key_sightings
        rows = self._conn.execute(
            select(t)
            .where(t.c.workspace_id == workspace_id, t.c.partner == partner)
            .order_by(t.c.last_seen.desc())
        )
        return [KeySighting(r.fingerprint, r.first_seen, r.last_seen, r.requests) for r in rows]

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


class SqlServerAddresses:
    """The addresses `serve` recorded, by name."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, name: str) -> str | None:
        """The recorded value, if any."""
        t = server_addresses
        return self._conn.execute(select(t.c.value).where(t.c.name == name)).scalar()

    def put(self, name: str, value: str | None, *, now: float) -> None:
        """Record `value` under `name` (None removes it)."""
        t = server_addresses
        if value is None:
            self._conn.execute(delete(t).where(t.c.name == name))
            return
        stmt = _upsert(self._conn)(t).values(name=name, value=value, updated_at=now)
        self._conn.execute(
            stmt.on_conflict_do_update(index_elements=["name"], set_={"value": value, "updated_at": now})
        )


def _partner_key(row: Any) -> PartnerKey:
    return PartnerKey(
        id=row.id,
        partner=row.partner,
        created_at=row.created_at,
        expires_at=row.expires_at,
        key_hash=row.key_hash,
    )


def _integration(row: Any) -> Integration:
    return Integration(
        workspace_id=row.workspace_id,
        partner=row.partner,
        enabled=bool(row.enabled),
        auth_mode=row.auth_mode,
        updated_at=row.updated_at,
    )


def _upsert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
