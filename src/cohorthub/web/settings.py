"""Settings: REST API keys (create, shown once, revoke) with their permissions; accounts and roles."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cohorthub.accounts import services as accounts
from cohorthub.accounts.model import ROLES
from cohorthub.accounts.passwords import Argon2Hasher
from cohorthub.api.http import in_thread
from cohorthub.web.context import Ctx, page, redirect, render
from cohorthub.workspaces import services as workspaces
from cohorthub.workspaces.model import PERMISSIONS

_hasher = Argon2Hasher()


def _values(ctx: Ctx) -> dict[str, Any]:
    with ctx.c.uow(readonly=True) as uow:
        keys = workspaces.list_rest_keys(uow=uow, workspace_id=ctx.workspace_id)
        people = accounts.list_accounts(uow=uow) if ctx.can("admin") else []
    return {"keys": keys, "accounts": people, "permissions": PERMISSIONS, "roles": ROLES}


@page("read")
async def settings_page(request: Request, ctx: Ctx) -> Response:
    """`GET /dashboard/settings`."""
    values = await in_thread(lambda: _values(ctx))
    return render(ctx, "settings.html", title=ctx.gettext("Settings"), nav="settings", new_key=None, **values)


@page("admin")
async def create_key(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/settings/keys`: a REST API key, shown once in the answer."""
    assert ctx.form is not None
    chosen = [p for p in ctx.form.getlist("permissions") if isinstance(p, str)]

    def run() -> workspaces.IssuedKey:
        with ctx.c.uow() as uow:
            return workspaces.create_rest_key(uow=uow, workspace_id=ctx.workspace_id,
                                              name=ctx.field("name") or "key", permissions=chosen,
                                              now=ctx.c.now())  # fmt: skip

    issued = await in_thread(run)
    values = await in_thread(lambda: _values(ctx))
    return render(
        ctx, "settings.html", title=ctx.gettext("Settings"), nav="settings", new_key=issued, **values
    )


@page("admin")
async def revoke_key(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/settings/keys/{id}/revoke`."""
    key_id = int(request.path_params["key_id"])

    def run() -> None:
        with ctx.c.uow() as uow:
            workspaces.revoke_workspace_key(
                uow=uow, workspace_id=ctx.workspace_id, key_id=key_id, now=ctx.c.now()
            )

    await in_thread(run)
    return redirect("/settings")


@page("admin")
async def create_account(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/settings/accounts`: a new account with a role."""

    def run() -> None:
        with ctx.c.uow() as uow:
            accounts.create_account(uow=uow, hasher=_hasher, email=ctx.field("email"),
                                    password=ctx.field("password"), role=ctx.field("role"),
                                    now=ctx.c.now())  # fmt: skip

    await in_thread(run)
    return redirect("/settings")


@page("admin")
async def change_role(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/settings/accounts/{id}/role`."""
    account_id = int(request.path_params["account_id"])

    def run() -> None:
        with ctx.c.uow() as uow:
            accounts.set_role(uow=uow, actor=ctx.account, account_id=account_id, role=ctx.field("role"))

    await in_thread(run)
    return redirect("/settings")


ROUTES: list[BaseRoute] = [
    Route("/settings", settings_page, methods=["GET"]),
    Route("/settings/keys", create_key, methods=["POST"]),
    Route("/settings/keys/{key_id:int}/revoke", revoke_key, methods=["POST"]),
    Route("/settings/accounts", create_account, methods=["POST"]),
    Route("/settings/accounts/{account_id:int}/role", change_role, methods=["POST"]),
]
