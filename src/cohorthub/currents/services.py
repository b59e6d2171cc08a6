"""Currents use cases: manage connectors, read their statistics, replay events."""

from __future__ import annotations

import msgspec

from cohorthub.currents import envelope
from cohorthub.currents.errors import ConnectorNotFound, InvalidConnector
from cohorthub.currents.model import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EVENTS,
    Connector,
    ConnectorStats,
    EventSelection,
    new_connector_id,
    validate_batch_size,
    validate_kind,
    validate_token,
    validate_url,
)
from cohorthub.currents.ports import CurrentsUnitOfWork, Sender, SendResult
from cohorthub.currents.wire import batch_body, request_headers


def create_connector(
    *,
    uow: CurrentsUnitOfWork,
    workspace_id: str,
    kind: str,
    url: str,
    token: str | None = None,
    events: str = DEFAULT_EVENTS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    now: float,
) -> Connector:
    """Create a connector that exports the workspace's events recorded from now on."""
    connector = Connector(
        id=new_connector_id(),
        workspace_id=workspace_id,
        kind=validate_kind(kind),
        url=validate_url(url),
        token=validate_token(token),
        events=EventSelection.parse(events),
        batch_size=validate_batch_size(batch_size),
        paused=False,
        created_at=now,
    )
    if not uow.currents.workspace_exists(workspace_id):
        raise InvalidConnector(f"No workspace with id {workspace_id}")
    uow.currents.add_connector(connector)
    uow.commit()
    return connector


def list_connectors(*, uow: CurrentsUnitOfWork, workspace_id: str | None = None) -> list[Connector]:
    """Connectors, oldest first (of one workspace when given)."""
    return uow.currents.list_connectors(workspace_id)


def get_connector(
    *, uow: CurrentsUnitOfWork, connector_id: str, workspace_id: str | None = None
) -> Connector:
    """The connector, or `ConnectorNotFound` (also when it belongs to another workspace)."""
    connector = uow.currents.get_connector(connector_id)
    if connector is None or (workspace_id is not None and connector.workspace_id != workspace_id):
        raise ConnectorNotFound(f"No Currents connector with id {connector_id}")
    return connector


def set_paused(
    *, uow: CurrentsUnitOfWork, connector_id: str, paused: bool, workspace_id: str | None = None
) -> Connector:
    """Pause (stop sending, keep queueing) or resume a connector."""
    get_connector(uow=uow, connector_id=connector_id, workspace_id=workspace_id)
    uow.currents.set_paused(connector_id, paused)
    connector = get_connector(uow=uow, connector_id=connector_id)
    uow.commit()
    return connector


def delete_connector(*, uow: CurrentsUnitOfWork, connector_id: str, workspace_id: str | None = None) -> None:
    """Delete a connector, its queued batches and its dead letters (the outbox stays)."""
    get_connector(uow=uow, connector_id=connector_id, workspace_id=workspace_id)
    uow.currents.delete_connector(connector_id)
    uow.commit()


def connector_stats(
    *, uow: CurrentsUnitOfWork, connector_id: str, now: float, workspace_id: str | None = None
) -> ConnectorStats:
    """Queued, in flight, delivered, retried, dropped, oldest undelivered age, last error."""
    connector = get_connector(uow=uow, connector_id=connector_id, workspace_id=workspace_id)
    return uow.currents.stats(connector, now=now)


def replay_events(
    *,
    uow: CurrentsUnitOfWork,
    connector_id: str,
    since: float | None = None,
    dead_letters: bool = False,
    now: float,
) -> int:
    """Queue again the events recorded since `since` and/or the dead letters; return how many."""
    if since is None and not dead_letters:
        raise InvalidConnector("Replay needs --since or --dead-letters")
    connector = get_connector(uow=uow, connector_id=connector_id)
    count = 0
    if since is not None:
        count += uow.currents.replay_since(connector, since=since, now=now)
    if dead_letters:
        count += uow.currents.replay_dead_letters(connector, now=now)
    uow.commit()
    return count


def send_test_event(
    *, uow: CurrentsUnitOfWork, sender: Sender, connector_id: str, workspace_id: str, now: float
) -> SendResult:
    """POST one sample `users.behaviors.CustomEvent` batch to the connector's URL (nothing is queued)."""
    connector = get_connector(uow=uow, connector_id=connector_id, workspace_id=workspace_id)
    sample = envelope.custom_event(
        workspace_id=workspace_id,
        user=envelope.event_user(braze_id="000000000000000000000000", external_id="cohorthub-test"),
        name="cohorthub.test",
        time=now,
        custom_properties={"test": True},
    )
    body = batch_body([msgspec.json.encode(sample)])
    return sender.send(connector.url, request_headers(connector.token), body)
