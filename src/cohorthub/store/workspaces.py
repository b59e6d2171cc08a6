"""SQL repository for workspaces and REST API keys."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from cohorthub.store.tables import rest_api_keys, workspaces
from cohorthub.workspaces.model import RestKey, Workspace


class SqlWorkspaceRepository:
    """Workspaces and REST keys in SQL."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, workspace: Workspace) -> None:
        """Insert a workspace."""
        self._conn.execute(
            insert(workspaces).values(id=workspace.id, name=workspace.name, created_at=workspace.created_at)
        )

    def get(self, workspace_id: str) -> Workspace | None:
        """The workspace with that id, if any."""
        row = self._conn.execute(select(workspaces).where(workspaces.c.id == workspace_id)).first()
        return Workspace(id=row.id, name=row.name, created_at=row.created_at) if row else None

    def all(self) -> list[Workspace]:
        """All workspaces, oldest first."""
        rows = self._conn.execute(select(workspaces).order_by(workspaces.c.created_at, workspaces.c.id))
        return [Workspace(id=r.id, name=r.name, created_at=r.created_at) for r in rows]

    def add_rest_key(
        self, *, workspace_id: str, name: str, key_hash: str, permissions: frozenset[str], now: float
    ) -> int:
        """Store a key hash; return its id."""
        result = self._conn.execute(
            insert(rest_api_keys)
            .values(
                workspace_id=workspace_id,
                name=name,
                key_hash=key_hash,
                permissions=json.dumps(sorted(permissions)),
                created_at=now,
            )
            .returning(rest_api_keys.c.id)
        )
        return int(result.scalar_one())

    def rest_key_by_hash(self, key_hash: str) -> RestKey | None:
        """The key stored under that hash, if any."""
        row = self._conn.execute(_KEY_BY_HASH, {"key_hash": key_hash}).first()
        return _rest_key(row) if row else None

    def list_rest_keys(self, workspace_id: str) -> list[RestKey]:
        """A workspace's keys, oldest first."""
        rows = self._conn.execute(
            select(rest_api_keys)
            .where(rest_api_keys.c.workspace_id == workspace_id)
            .order_by(rest_api_keys.c.id)
        )
        return [_rest_key(r) for r in rows]

    def revoke_rest_key(self, key_id: int, now: float) -> bool:
        """Revoke an active key; False when there was none."""
        result = self._conn.execute(
            update(rest_api_keys)
            .where(rest_api_keys.c.id == key_id, rest_api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount == 1


#: Built once: every API request looks its key up (building the statement cost as much as running it).
_KEY_BY_HASH = select(rest_api_keys).where(rest_api_keys.c.key_hash == bindparam("key_hash"))


def _rest_key(row: Any) -> RestKey:
    return RestKey(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        permissions=frozenset(json.loads(row.permissions)),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
