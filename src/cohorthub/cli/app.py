"""`cohorthub app …`: SDK apps (the key a web app passes to `braze.initialize`) and allowed origins."""

from __future__ import annotations

from typing import Annotated

import typer

from cohorthub.apps import services
from cohorthub.cli.common import DatabaseOption, JsonOption, emit, wired

app = typer.Typer(help="SDK apps: keys for Braze's Web SDK, allowed page origins.", no_args_is_help=True)
WorkspaceOption = Annotated[str, typer.Option("--workspace", help="Workspace id.")]


@app.command("create")
def create(
    workspace: WorkspaceOption,
    name: Annotated[str, typer.Option("--name", help="A name for the app, e.g. web.")] = "web",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an SDK app; prints its app_id and the SDK API key to pass to braze.initialize (shown once)."""
    with wired(database) as c, c.uow() as uow:
        created, key = services.create_app(uow=uow, workspace_id=workspace, name=name, now=c.now())
        url = c.settings.public_url
    emit(
        {
            "app_id": created.id,
            "workspace_id": workspace,
            "name": created.name,
            "sdk_api_key": key,
            "base_url": url,
        },
        as_json=as_json,
    )


@app.command("list")
def list_(workspace: WorkspaceOption, database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """List a workspace's SDK apps with their counters (stored, duplicates, malformed, …)."""
    with wired(database) as c, c.uow(readonly=True) as uow:
        apps = services.list_apps(uow=uow, workspace_id=workspace)
    rows = [{"app_id": a.id, "name": a.name, "counters": counters} for a, counters in apps]
    emit(rows, as_json=as_json, title="SDK apps")


@app.command("origins")
def origins(
    workspace: WorkspaceOption,
    allow: Annotated[
        list[str] | None, typer.Option("--allow", help="An allowed page origin (repeat); replaces the list.")
    ] = None,
    any_origin: Annotated[bool, typer.Option("--any", help="Allow every origin again.")] = False,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show or set the page origins allowed to send SDK data (none set: any origin)."""
    with wired(database) as c, c.uow() as uow:
        if allow or any_origin:
            current = services.set_allowed_origins(uow=uow, workspace_id=workspace, origins=allow or [])
        else:
            current = services.allowed_origins(uow=uow, workspace_id=workspace)
    emit({"workspace_id": workspace, "allowed_origins": current or ["*"]}, as_json=as_json)
