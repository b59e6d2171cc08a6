"""SQL repository for users, aliases and devices (owned by the identity work)."""

from __future__ import annotations

from sqlalchemy import Connection


class SqlUserRepository:
    """Users, aliases, devices, custom events and purchases in SQL."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
