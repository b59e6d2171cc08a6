"""Sign in (rate-limited, CSRF double-submit cookie), sign out, workspace switcher, language."""

from __future__ import annotations

import secrets
import time

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from cohorthub.accounts import services as accounts
from cohorthub.accounts.errors import InvalidCredentials
from cohorthub.accounts.passwords import Argon2Hasher
from cohorthub.api.http import container, in_thread
from cohorthub.errors import CohorthubError
from cohorthub.keys import same_secret
from cohorthub.web.context import (
    FORM_CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    CsrfRejected,
    Ctx,
    error_response,
    language_of,
    page,
    redirect,
    render_template,
    timed,
)
from cohorthub.workspaces.services import require_workspace

_hasher = Argon2Hasher()


def _safe_next(target: str | None) -> str:
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _sign_in_page(request: Request, *, error: str = "", status: int = 200, email: str = "") -> Response:
    token = request.cookies.get(FORM_CSRF_COOKIE) or secrets.token_urlsafe(32)
    body = render_template(
        "signin.html",
        language_of(request, None),
        ctx=None,
        csrf=token,
        error=error,
        email=email,
        next=_safe_next(request.query_params.get("next")),
    )
    response = HTMLResponse(body, status_code=status)
    response.set_cookie(
        FORM_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path=PREFIX
    )
    return response


async def sign_in_form(request: Request) -> Response:
    """`GET /dashboard/signin`."""
    return timed(_sign_in_page(request), time.perf_counter())


async def sign_in(request: Request) -> Response:
    """`POST /dashboard/signin`: check the password, open a session, go where the user was going."""
    started = time.perf_counter()
    c = container(request)
    form = await request.form()
    email, password = str(form.get("email") or ""), str(form.get("password") or "")
    sent, expected = str(form.get("csrf_token") or ""), request.cookies.get(FORM_CSRF_COOKIE) or ""
    try:
        if not expected or not same_secret(sent, expected):
            raise CsrfRejected("The form expired; please try again")

        def run() -> accounts.SignedIn:
            with c.uow() as uow:
                return accounts.sign_in(
                    uow=uow,
                    hasher=_hasher,
                    email=email,
                    password=password,
                    client=request.client.host if request.client else "unknown",
                    workspace_id=None,
                    now=c.now(),
                )

        signed = await in_thread(run)
    except InvalidCredentials:
        tr_error = "Wrong e-mail or password"
        return timed(_sign_in_page(request, error=tr_error, status=401, email=email), started)
    except CohorthubError as exc:
        return timed(error_response(request, None, exc), started)
    response = RedirectResponse(_safe_next(str(form.get("next") or "")), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=int(signed.session.expires_at - signed.session.created_at),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path=PREFIX,
    )
    return timed(response, started)


@page("read")
async def sign_out(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/signout`."""

    def run() -> None:
        with ctx.c.uow() as uow:
            accounts.sign_out(uow=uow, token=ctx.token)

    await in_thread(run)
    response = redirect("/signin")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@page("read")
async def switch_workspace(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/workspace`: work in another workspace from now on."""
    workspace_id = ctx.field("workspace_id")

    def run() -> None:
        with ctx.c.uow() as uow:
            require_workspace(uow=uow, workspace_id=workspace_id)
            accounts.choose_workspace(uow=uow, token=ctx.token, workspace_id=workspace_id)

    await in_thread(run)
    return RedirectResponse(_safe_next(ctx.field("next")), status_code=303)


@page("read")
async def set_language(request: Request, ctx: Ctx) -> Response:
    """`POST /dashboard/language`: the account's language (empty: follow the browser)."""
    language = ctx.field("language") or None

    def run() -> None:
        with ctx.c.uow() as uow:
            accounts.set_language(uow=uow, account_id=ctx.account.id, language=language)

    await in_thread(run)
    return RedirectResponse(_safe_next(ctx.field("next")), status_code=303)


ROUTES: list[BaseRoute] = [
    Route("/signin", sign_in_form, methods=["GET"]),
    Route("/signin", sign_in, methods=["POST"]),
    Route("/signout", sign_out, methods=["POST"]),
    Route("/workspace", switch_workspace, methods=["POST"]),
    Route("/language", set_language, methods=["POST"]),
]
