"""`cohorthub user …`: dashboard accounts (admin, marketer, viewer)."""

from __future__ import annotations

from typing import Annotated

import typer

from cohorthub.accounts import services
from cohorthub.accounts.model import ROLES
from cohorthub.accounts.passwords import Argon2Hasher
from cohorthub.cli.common import DatabaseOption, JsonOption, emit, wired

app = typer.Typer(help="Dashboard accounts and their roles.", no_args_is_help=True)


@app.command("create")
def create(
    email: Annotated[str, typer.Option("--email", help="The e-mail the person signs in with.")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}")] = "viewer",
    password: Annotated[
        str,
        typer.Option(
            "--password",
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="COHORTHUB_USER_PASSWORD",
            help="Prompted for when not given (or set COHORTHUB_USER_PASSWORD).",
        ),
    ] = "",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a dashboard account (password hashed with argon2id)."""
    with wired(database) as c, c.uow() as uow:
        account = services.create_account(
            uow=uow, hasher=Argon2Hasher(), email=email, password=password, role=role, now=c.now()
        )
    emit({"account_id": account.id, "email": account.email, "role": account.role}, as_json=as_json)


@app.command("list")
def list_(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """List dashboard accounts."""
    with wired(database) as c, c.uow(readonly=True) as uow:
        rows = [
            {"account_id": a.id, "email": a.email, "role": a.role} for a in services.list_accounts(uow=uow)
        ]
    emit(rows, as_json=as_json, title="Accounts")
