"""HTTP fixtures for the users API: a workspace with its REST key, a client on the live server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from cohorthub.bootstrap import Container
from cohorthub.workspaces import services as workspaces
from tests.conftest import LiveServer

NOW = 1_800_000_000.0


@dataclass(frozen=True)
class Workspace:
    """A workspace and its all-permission REST key."""

    id: str
    key: str


class Users:
    """The /users/* calls with the workspace's key in the Authorization header."""

    def __init__(self, http: httpx.Client, key: str) -> None:
        self.http = http
        self.key = key

    def post(self, path: str, body: Any, *, key: str | None = None) -> httpx.Response:
        """POST JSON with a bearer key."""
        return self.http.post(path, json=body, headers={"Authorization": f"Bearer {key or self.key}"})

    def export(self, **body: Any) -> list[dict[str, Any]]:
        """The exported users; asserts success."""
        response = self.post("/users/export/ids", body)
        assert response.status_code == 200, response.text
        users: list[dict[str, Any]] = response.json()["users"]
        return users


@pytest.fixture
def workspace(container: Container) -> Workspace:
    """A fresh workspace."""
    with container.uow() as uow:
        ws, issued = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    return Workspace(ws.id, issued.key)


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client on the live server."""
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        yield http


@pytest.fixture
def users(client: httpx.Client, workspace: Workspace) -> Users:
    """Users API calls for the workspace."""
    return Users(client, workspace.key)
