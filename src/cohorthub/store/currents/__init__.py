"""SQL repository for Currents, one module per concept: connectors, delivery rounds (batches and
leases), dead letters and replays, outbox retention, statistics; `schema` holds the tables."""

from __future__ import annotations

from cohorthub.store.currents.connectors import ConnectorRows
from cohorthub.store.currents.dead_letters import Replays
from cohorthub.store.currents.delivery import Delivery
from cohorthub.store.currents.retention import Retention
from cohorthub.store.currents.schema import batches, connectors, dead_letters, pack_seqs, unpack_seqs
from cohorthub.store.currents.stats import Stats

__all__ = [
    "SqlCurrentsRepository",
    "batches",
    "connectors",
    "dead_letters",
    "pack_seqs",
    "unpack_seqs",
]


class SqlCurrentsRepository(ConnectorRows, Delivery, Replays, Retention, Stats):
    """Currents state in SQL, bound to one transaction."""
