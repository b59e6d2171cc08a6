"""Messaging storage: programs, jobs, the send ledger, Canvas entries, and the facts messaging reads."""

from __future__ import annotations

from sqlalchemy import Connection

from cohorthub.store.messaging.entries import SqlEntryStore
from cohorthub.store.messaging.facts import SqlFactStore
from cohorthub.store.messaging.jobs import SqlJobStore
from cohorthub.store.messaging.ledger import SqlLedgerStore
from cohorthub.store.messaging.programs import SqlProgramStore


class SqlMessagingStore:
    """Every messaging store, bound to one connection (one transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.programs = SqlProgramStore(conn)
        self.jobs = SqlJobStore(conn)
        self.ledger = SqlLedgerStore(conn)
        self.entries = SqlEntryStore(conn)
        self.facts = SqlFactStore(conn)
