"""Connector rows: create, read, pause, delete; the state a delivery round starts from."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select, text, update

from cohorthub.currents.model import Connector
from cohorthub.currents.ports import Cursor
from cohorthub.store.currents.schema import (
    PG_XMIN,
    Bound,
    batches,
    connector_from_row,
    connectors,
    dead_letters,
)
from cohorthub.store.tables import outbox, workspaces


class ConnectorRows(Bound):
    """Connectors of every workspace."""

    def workspace_exists(self, workspace_id: str) -> bool:
        """True when the workspace exists."""
        query = select(workspaces.c.id).where(workspaces.c.id == workspace_id)
        return self._conn.execute(query).first() is not None

    def add_connector(self, connector: Connector) -> None:
        """Insert a connector whose cursor starts at the current end of the outbox."""
        if self._pg:
            cursor_xid = int(self._conn.execute(text(f"SELECT {PG_XMIN}::text::bigint")).scalar_one())
            cursor_seq = 0
        else:
            cursor_xid = 0
            cursor_seq = self._conn.execute(select(func.coalesce(func.max(outbox.c.seq), 0))).scalar_one()
        self._conn.execute(
            insert(connectors).values(
                id=connector.id,
                workspace_id=connector.workspace_id,
                kind=connector.kind,
                url=connector.url,
                token=connector.token.reveal() if connector.token else None,
                events=str(connector.events),
                batch_size=connector.batch_size,
                paused=connector.paused,
                created_at=connector.created_at,
                cursor_xid=cursor_xid,
                cursor_seq=cursor_seq,
                halted=False,
                delivered=0,
                retried=0,
                dropped=0,
            )
        )

    def get_connector(self, connector_id: str) -> Connector | None:
        """The connector with that id, if any."""
        row = self._conn.execute(select(connectors).where(connectors.c.id == connector_id)).first()
        return connector_from_row(row) if row else None

    def list_connectors(self, workspace_id: str | None = None) -> list[Connector]:
        """Connectors, oldest first, optionally of one workspace."""
        query = select(connectors).order_by(connectors.c.created_at, connectors.c.id)
        if workspace_id is not None:
            query = query.where(connectors.c.workspace_id == workspace_id)
        return [connector_from_row(row) for row in self._conn.execute(query)]

    def set_paused(self, connector_id: str, paused: bool) -> bool:
        """Pause or resume; False when there is no such connector."""
        query = update(connectors).where(connectors.c.id == connector_id).values(paused=paused)
        return self._conn.execute(query).rowcount > 0

    def delete_connector(self, connector_id: str) -> bool:
        """Delete a connector with its batches and dead letters; False when there is none."""
        self._conn.execute(delete(batches).where(batches.c.connector_id == connector_id))
        self._conn.execute(delete(dead_letters).where(dead_letters.c.connector_id == connector_id))
        return self._conn.execute(delete(connectors).where(connectors.c.id == connector_id)).rowcount > 0

    def connector_cursor(self, connector_id: str) -> Cursor | None:
        """The connector and its delivery state, not locked (a round locks the row only to claim)."""
        row = self._conn.execute(select(connectors).where(connectors.c.id == connector_id)).first()
        if row is None:
            return None
        return Cursor(connector=connector_from_row(row), blocked_until=row.blocked_until, halted=row.halted)
