"""`cohorthub workspace …`: create and list workspaces, manage REST API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from cohorthub.cli.common import DatabaseOption, JsonOption, emit, wired
from cohorthub.workspaces import services
from cohorthub.workspaces.model import PERMISSIONS

app = typer.Typer(help="Workspaces and their REST API keys.", no_args_is_help=True)


@app.command("create")
def create(name: str, database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Create a workspace; prints its id and a REST API key holding every permission (shown once)."""
    with wired(database) as c, c.uow() as uow:
        workspace, key = services.create_workspace(uow=uow, name=name, now=c.now())
    emit({"workspace_id": workspace.id, "name": workspace.name, "rest_api_key": key.key}, as_json=as_json)


@app.command("list")
def list_(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """List workspaces."""
    with wired(database) as c, c.uow(readonly=True) as uow:
        rows = [{"workspace_id": w.id, "name": w.name} for w in services.list_workspaces(uow=uow)]
    emit(rows, as_json=as_json, title="Workspaces")


@app.command("create-key")
def create_key(
    workspace: Annotated[str, typer.Option("--workspace", help="Workspace id.")],
    permission: Annotated[
        list[str], typer.Option("--permission", "-p", help=f"One of: {', '.join(PERMISSIONS)}")
    ],
    name: Annotated[str, typer.Option("--name")] = "key",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a REST API key limited to the given permissions (shown once)."""
    with wired(database) as c, c.uow() as uow:
        key = services.create_rest_key(
            uow=uow, workspace_id=workspace, name=name, permissions=permission, now=c.now()
        )
    emit({"key_id": key.id, "rest_api_key": key.key, "permissions": list(key.permissions)}, as_json=as_json)


@app.command("revoke-key")
def revoke_key(key_id: int, database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Revoke a REST API key by id."""
    with wired(database) as c, c.uow() as uow:
        services.revoke_rest_key(uow=uow, key_id=key_id, now=c.now())
    emit({"key_id": key_id, "revoked": True}, as_json=as_json)
