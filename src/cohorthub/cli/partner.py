"""`cohorthub partner …`: partner API keys and per-workspace integrations."""

from __future__ import annotations

from typing import Annotated

import typer

from cohorthub.cli.common import DatabaseOption, JsonOption, emit, wired
from cohorthub.partners import services
from cohorthub.partners.model import REGISTRY
from cohorthub.workspaces.services import require_workspace

app = typer.Typer(help="Technology partners: partner API keys and data import keys.", no_args_is_help=True)

WorkspaceOption = Annotated[str, typer.Option("--workspace", help="Workspace id.")]
GraceOption = Annotated[
    float | None,
    typer.Option(
        "--grace",
        help="Seconds the previous key keeps working (0 = invalidate at once). Default: "
        "$COHORTHUB_KEY_ROTATION_GRACE, else 24 h.",
    ),
]


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """The partner registry: path names and segment filter names."""
    rows = [
        {"partner": p.name, "display_name": p.display_name, "filter_name": p.filter_name}
        for p in REGISTRY.values()
    ]
    emit(rows, as_json=as_json, title="Partners")


@app.command("issue-key")
def issue_key(partner: str, database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Issue a partner API key (operator side; shown once)."""
    with wired(database) as c, c.uow() as uow:
        key = services.issue_partner_key(uow=uow, partner=partner, now=c.now())
    emit({"partner": partner, "partner_api_key": key}, as_json=as_json)


@app.command("enable")
def enable(
    partner: str, workspace: WorkspaceOption, database: DatabaseOption = None, as_json: JsonOption = False
) -> None:
    """Enable a partner for a workspace; prints the data import key (shown once) and REST endpoint."""
    with wired(database) as c, c.uow() as uow:
        require_workspace(uow=uow, workspace_id=workspace)
        enabled = services.enable_partner(uow=uow, workspace_id=workspace, partner=partner, now=c.now())
        endpoint = c.settings.public_url
    emit(
        {
            "partner": enabled.partner,
            "workspace_id": enabled.workspace_id,
            "data_import_key": enabled.data_import_key,
            "rest_endpoint": endpoint,
        },
        as_json=as_json,
    )


@app.command("disable")
def disable(
    partner: str, workspace: WorkspaceOption, database: DatabaseOption = None, as_json: JsonOption = False
) -> None:
    """Disable a partner for a workspace: its requests get `Partner not enabled …`."""
    with wired(database) as c, c.uow() as uow:
        services.disable_partner(uow=uow, workspace_id=workspace, partner=partner, now=c.now())
    emit({"partner": partner, "workspace_id": workspace, "enabled": False}, as_json=as_json)


@app.command("rotate-key")
def rotate_key(
    partner: str,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace", help="Rotate this workspace's data import key (else the partner API key)."
        ),
    ] = None,
    grace: GraceOption = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rotate a data import key (`--workspace`) or the partner API key; the old one lasts the grace period."""
    with wired(database) as c, c.uow() as uow:
        seconds = c.settings.key_rotation_grace_seconds if grace is None else grace
        if workspace is None:
            key = services.rotate_partner_key(uow=uow, partner=partner, now=c.now(), grace_seconds=seconds)
            result = {"partner": partner, "partner_api_key": key, "previous_valid_for_seconds": seconds}
        else:
            key = services.rotate_data_import_key(
                uow=uow, workspace_id=workspace, partner=partner, now=c.now(), grace_seconds=seconds
            )
            result = {
                "partner": partner,
                "workspace_id": workspace,
                "data_import_key": key,
                "previous_valid_for_seconds": seconds,
            }
    emit(result, as_json=as_json)
