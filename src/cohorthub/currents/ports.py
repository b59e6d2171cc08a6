"""What Currents needs from storage and from the network, with an in-memory sender twin."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cohorthub.currents.model import Connector, ConnectorStats


@dataclass(frozen=True, slots=True)
class Cursor:
    """A connector and its delivery state, as read at the start of a round."""

    connector: Connector
    blocked_until: float | None
    halted: bool


@dataclass(frozen=True, slots=True)
class Claim:
    """A leased batch: the outbox positions and their stored JSON payloads."""

    batch_id: int
    seqs: tuple[int, ...]
    payloads: tuple[bytes, ...]
    attempts: int
    first_failure_at: float | None


@dataclass(frozen=True, slots=True)
class Resolution:
    """What became of a claimed batch; `kind` is ack | retry | halt | split | drop | release."""

    kind: str
    batch_id: int
    size: int
    attempts: int = 0
    first_failure_at: float | None = None
    next_attempt_at: float | None = None
    parts: tuple[tuple[int, ...], ...] = ()
    status: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Tally:
    """Events delivered, retried and dropped by a round's outcomes (batches found and settled)."""

    delivered: int = 0
    retried: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class PruneChunk:
    """One retention chunk: rows deleted (or deletable), the last position examined, walk over."""

    removed: int
    last_seq: int
    done: bool


class CurrentsRepository(Protocol):
    """Connectors, their batches and dead letters."""

    def workspace_exists(self, workspace_id: str) -> bool: ...
    def add_connector(self, connector: Connector) -> None: ...
    def get_connector(self, connector_id: str) -> Connector | None: ...
    def list_connectors(self, workspace_id: str | None = None) -> list[Connector]: ...
    def set_paused(self, connector_id: str, paused: bool) -> bool: ...
    def delete_connector(self, connector_id: str) -> bool: ...
    def stats(self, connector: Connector, *, now: float) -> ConnectorStats: ...
    def connector_cursor(self, connector_id: str) -> Cursor | None: ...
    def settle_batches(
        self, connector_id: str, resolutions: Sequence[Resolution], *, now: float
    ) -> Tally: ...
    def record_outcomes(self, connector_id: str, tally: Tally, state: Mapping[str, Any]) -> None: ...
    def lease_due(
        self, connector_id: str, *, now: float, limit: int, owner: str, lease_until: float
    ) -> list[Claim]: ...
    def claim_new(
        self, connector: Connector, *, max_events: int, owner: str, lease_until: float, now: float
    ) -> list[Claim]: ...
    def renew_leases(self, owner: str, *, now: float, lease_until: float) -> int: ...
    def next_due_at(self, connector_id: str) -> float | None: ...
    def replay_since(self, connector: Connector, *, since: float, now: float) -> int: ...
    def replay_dead_letters(self, connector: Connector, *, now: float) -> int: ...
    def workspace_ids(self) -> list[str]: ...
    def prune_outbox_chunk(
        self, workspace_id: str, *, before: float, after_seq: int, limit: int, dry_run: bool
    ) -> PruneChunk: ...


class CurrentsUnitOfWork(Protocol):
    """A transaction that can see connectors."""

    @property
    def currents(self) -> CurrentsRepository: ...

    def commit(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SendResult:
    """The answer to one POST: `status` None means a network error or timeout."""

    status: int | None
    retry_after: str | None = None
    error: str | None = None


class Sender(Protocol):
    """POSTs one Currents request; never raises for HTTP or network failures."""

    def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult: ...

    def close(self) -> None: ...


@dataclass
class MemorySender:
    """The in-memory twin of the HTTP sender: records requests, answers from a script."""

    answer: Callable[[bytes], SendResult] = field(default=lambda _body: SendResult(200))
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        """Record the request and return the scripted answer."""
        self.requests.append((url, headers, body))
        return self.answer(body)

    def close(self) -> None:
        """Nothing to release."""
