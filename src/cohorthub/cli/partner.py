"""`cohorthub partner …`: partner API keys and per-workspace integrations."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from cohorthub.cli.common import DatabaseOption, JsonOption, emit, wired
from cohorthub.config import configured_public_url
from cohorthub.partners import overview, services
from cohorthub.partners.model import AUTH_DATA_IMPORT_KEY_ONLY, AUTH_MODES, AUTH_PARTNER_KEY, REGISTRY
from cohorthub.store.uow import SqlUnitOfWork
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


PublicUrlOption = Annotated[
    str | None,
    typer.Option(
        "--public-url",
        help="REST endpoint to show. Default: $COHORTHUB_PUBLIC_URL, else the public URL or "
        "listen address the last `cohorthub serve` on this database recorded.",
        show_default=False,
    ),
]
NO_ENDPOINT = "unknown: start `cohorthub serve` on this database, or pass --public-url"


def endpoint(uow: SqlUnitOfWork, public_url: str | None, *, as_json: bool) -> str | None:
    """The REST endpoint to give partners (JSON: null when unknown), as `enable` and `show` print it."""
    found = overview.rest_endpoint(uow=uow, configured=public_url or configured_public_url())
    return found.url or (None if as_json else NO_ENDPOINT)


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


@app.command("add-key")
def add_key(
    partner: str,
    from_stdin: Annotated[
        bool, typer.Option("--from-stdin", help="Read the key value from standard input (required).")
    ] = False,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a partner API key value you were given (the key a real partner sends); stored hashed."""
    if not from_stdin:
        raise typer.BadParameter("pass the key on standard input with --from-stdin (never as an argument)")
    value = sys.stdin.readline().strip()
    with wired(database) as c, c.uow() as uow:
        key = services.register_partner_key(uow=uow, partner=partner, key=value, now=c.now())
    emit({"partner": partner, "key_id": key.id, "fingerprint": key.key_hash[:16]}, as_json=as_json)


DataImportKeyOnly = Annotated[
    bool,
    typer.Option(
        "--data-import-key-only",
        help="Accept any partner API key with this workspace's data import key, recording the "
        "partner key's fingerprint (see docs/connecting.md for the trade-off).",
    ),
]


@app.command("enable")
def enable(
    partner: str,
    workspace: WorkspaceOption,
    data_import_key_only: DataImportKeyOnly = False,
    public_url: PublicUrlOption = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enable a partner for a workspace; prints the data import key (shown once) and REST endpoint."""
    mode = AUTH_DATA_IMPORT_KEY_ONLY if data_import_key_only else AUTH_PARTNER_KEY
    with wired(database) as c:
        with c.uow() as uow:
            require_workspace(uow=uow, workspace_id=workspace)
            enabled = services.enable_partner(
                uow=uow, workspace_id=workspace, partner=partner, now=c.now(), auth_mode=mode
            )
        with c.uow(readonly=True) as uow:
            rest = endpoint(uow, public_url, as_json=as_json)
    emit(
        {
            "partner": enabled.partner,
            "workspace_id": enabled.workspace_id,
            "data_import_key": enabled.data_import_key,
            "auth_mode": mode,
            "rest_endpoint": rest,
        },
        as_json=as_json,
    )


@app.command("auth")
def auth(
    partner: str,
    workspace: WorkspaceOption,
    mode: Annotated[str, typer.Option("--mode", help=f"One of: {', '.join(AUTH_MODES)}.")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Choose how the partner authenticates for a workspace (both keys, or the data import key only)."""
    with wired(database) as c, c.uow() as uow:
        services.set_auth_mode(uow=uow, workspace_id=workspace, partner=partner, mode=mode, now=c.now())
    emit({"partner": partner, "workspace_id": workspace, "auth_mode": mode}, as_json=as_json)


@app.command("show")
def show(
    partner: str,
    workspace: Annotated[str | None, typer.Option("--workspace", help="Only this workspace.")] = None,
    public_url: PublicUrlOption = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """The REST endpoint, the partner's registered keys (by fingerprint) and its workspaces."""
    with wired(database) as c, c.uow(readonly=True) as uow:
        found = overview.describe_partner(uow=uow, partner=partner, workspace_id=workspace, now=c.now())
        rest = endpoint(uow, public_url, as_json=as_json)
    keys = [
        {"key_id": k.id, "fingerprint": k.fingerprint, "active": k.active, "expires_at": k.expires_at}
        for k in found.keys
    ]
    workspaces: list[dict[str, Any]] = [
        {
            "workspace_id": i.integration.workspace_id,
            "enabled": i.integration.enabled,
            "auth_mode": i.integration.auth_mode,
            "partner_keys_seen": [
                {"fingerprint": s.fingerprint, "requests": s.requests, "last_seen": s.last_seen}
                for s in i.sightings
            ],
        }
        for i in found.integrations
    ]
    if as_json:
        emit(
            {"partner": partner, "rest_endpoint": rest, "keys": keys, "workspaces": workspaces}, as_json=True
        )
        return
    emit({"partner": partner, "display_name": found.display_name, "rest_endpoint": rest}, as_json=False)
    typer.echo("")
    emit(keys, as_json=False, title="Partner API keys")
    for ws in workspaces:
        seen = ws.pop("partner_keys_seen")
        typer.echo("")
        emit(ws, as_json=False, title="Workspace")
        if seen:
            emit(seen, as_json=False, title="  partner keys seen (data import key only)")


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
