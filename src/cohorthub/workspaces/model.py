"""Workspaces and REST API key permissions (pure values)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

#: Permission names follow the endpoints they open, as Braze names them.
PERMISSIONS: tuple[str, ...] = (
    "users.track",
    "users.identify",
    "users.alias.new",
    "users.delete",
    "users.export.ids",
    "users.import",
    "cohorts.read",
    "segments.list",
    "segments.details",
    "segments.write",
    "segments.read",
    "currents.read",
    "currents.write",
    "campaigns.trigger.send",
    "canvas.trigger.send",
    "messages.send",
    "sends.id.create",
    "campaigns.list",
    "campaigns.details",
    "canvas.list",
    "canvas.details",
    "campaigns.write",
    "campaigns.read",
)


@dataclass(frozen=True, slots=True)
class Workspace:
    """A tenant: it owns users, cohorts, keys and connectors."""

    id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class RestKey:
    """A stored REST API key (its hash, never the key)."""

    id: int
    workspace_id: str
    name: str
    permissions: frozenset[str]
    created_at: float
    revoked_at: float | None


def new_workspace_id() -> str:
    """A fresh 32-hex workspace id."""
    return uuid.uuid4().hex


def unknown_permissions(requested: list[str]) -> list[str]:
    """The requested names that are not permissions (empty when all are known)."""
    return [name for name in requested if name not in PERMISSIONS]
