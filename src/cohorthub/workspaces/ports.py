"""What the workspace use cases need from storage."""

from __future__ import annotations

from typing import Protocol

from cohorthub.workspaces.model import RestKey, Workspace


class WorkspaceRepository(Protocol):
    """Workspaces and REST keys."""

    def add(self, workspace: Workspace) -> None: ...
    def get(self, workspace_id: str) -> Workspace | None: ...
    def all(self) -> list[Workspace]: ...
    def add_rest_key(
        self, *, workspace_id: str, name: str, key_hash: str, permissions: frozenset[str], now: float
    ) -> int: ...
    def rest_key_by_hash(self, key_hash: str) -> RestKey | None: ...
    def list_rest_keys(self, workspace_id: str) -> list[RestKey]: ...
    def revoke_rest_key(self, key_id: int, now: float) -> bool: ...


class WorkspaceUnitOfWork(Protocol):
    """A transaction that can see workspaces."""

    @property
    def workspaces(self) -> WorkspaceRepository: ...

    def commit(self) -> None: ...
