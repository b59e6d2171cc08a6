"""Workspace use cases: create, list, issue and check REST API keys."""

from __future__ import annotations

from dataclasses import dataclass

from cohorthub import keys
from cohorthub.text import storable_problem
from cohorthub.workspaces.errors import (
    InvalidApiKey,
    InvalidWorkspace,
    PermissionDenied,
    WorkspaceNotFound,
)
from cohorthub.workspaces.model import (
    PERMISSIONS,
    RestKey,
    Workspace,
    new_workspace_id,
    unknown_permissions,
)
from cohorthub.workspaces.ports import WorkspaceUnitOfWork


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key as shown once to its owner."""

    id: int
    key: str
    permissions: tuple[str, ...]


def create_workspace(*, uow: WorkspaceUnitOfWork, name: str, now: float) -> tuple[Workspace, IssuedKey]:
    """Create a workspace and its first REST API key, which holds every permission."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidWorkspace("Workspace name must be 1 to 200 characters")
    workspace = Workspace(id=new_workspace_id(), name=name, created_at=now)
    uow.workspaces.add(workspace)
    issued = _issue(uow, workspace.id, "default", list(PERMISSIONS), now)
    uow.commit()
    return workspace, issued


def list_workspaces(*, uow: WorkspaceUnitOfWork) -> list[Workspace]:
    """Every workspace, oldest first."""
    return uow.workspaces.all()


def create_rest_key(
    *, uow: WorkspaceUnitOfWork, workspace_id: str, name: str, permissions: list[str], now: float
) -> IssuedKey:
    """Issue a REST API key limited to `permissions`."""
    require_workspace(uow=uow, workspace_id=workspace_id)
    if bad := unknown_permissions(permissions):
        raise InvalidWorkspace(f"Unknown permission(s): {', '.join(bad)}; known: {', '.join(PERMISSIONS)}")
    if not permissions:
        raise InvalidWorkspace("A key needs at least one permission")
    name = name.strip()
    if not name or len(name) > 200:  # the column's size: PostgreSQL refuses more, SQLite would keep it
        raise InvalidWorkspace("Key name must be 1 to 200 characters")
    if problem := storable_problem(name):
        raise InvalidWorkspace(f"Key name {problem}")
    issued = _issue(uow, workspace_id, name, permissions, now)
    uow.commit()
    return issued


def revoke_rest_key(*, uow: WorkspaceUnitOfWork, key_id: int, now: float) -> None:
    """Stop a REST API key from working."""
    if not uow.workspaces.revoke_rest_key(key_id, now):
        raise InvalidWorkspace(f"No active REST API key with id {key_id}")
    uow.commit()


def list_rest_keys(*, uow: WorkspaceUnitOfWork, workspace_id: str) -> list[RestKey]:
    """A workspace's REST API keys (never the keys themselves), oldest first."""
    return uow.workspaces.list_rest_keys(workspace_id)


def revoke_workspace_key(*, uow: WorkspaceUnitOfWork, workspace_id: str, key_id: int, now: float) -> None:
    """Revoke a key of this workspace (a key of another workspace is not found)."""
    if not any(k.id == key_id for k in uow.workspaces.list_rest_keys(workspace_id)):
        raise InvalidWorkspace(f"No active REST API key with id {key_id}")
    revoke_rest_key(uow=uow, key_id=key_id, now=now)


def authenticate_rest_key(*, uow: WorkspaceUnitOfWork, key: str | None, permission: str) -> RestKey:
    """The key's record if it is valid and holds `permission`; raise otherwise."""
    if not key:
        raise InvalidApiKey("Invalid API key: no API key given")
    stored = uow.workspaces.rest_key_by_hash(keys.hash_key(key))
    if stored is None or stored.revoked_at is not None:
        raise InvalidApiKey("Invalid API key")
    if permission not in stored.permissions:
        raise PermissionDenied(f"This API key does not have the {permission} permission")
    return stored


def require_workspace(*, uow: WorkspaceUnitOfWork, workspace_id: str) -> Workspace:
    """The workspace, or `WorkspaceNotFound`."""
    workspace = uow.workspaces.get(workspace_id)
    if workspace is None:
        raise WorkspaceNotFound(f"No workspace with id {workspace_id}")
    return workspace


def _issue(
    uow: WorkspaceUnitOfWork, workspace_id: str, name: str, permissions: list[str], now: float
) -> IssuedKey:
    key = keys.new_key()
    ordered = tuple(p for p in PERMISSIONS if p in permissions)
    key_id = uow.workspaces.add_rest_key(
        workspace_id=workspace_id,
        name=name,
        key_hash=keys.hash_key(key),
        permissions=frozenset(ordered),
        now=now,
    )
    return IssuedKey(id=key_id, key=key, permissions=ordered)
