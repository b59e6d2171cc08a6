"""Per-request context: who is signed in, the workspace, the language; CSRF; rendering; timing.

Every dashboard endpoint is wrapped by `page(action)`: it loads the session (or redirects to
the sign-in page), checks the account's role allows `action` (server-side, on every request),
checks the CSRF token of every POST, renders domain errors as a page with their status, and
reports its own duration in a `Server-Timing` header.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from cohorthub.accounts import services as accounts
from cohorthub.accounts.errors import NotSignedIn, RoleForbids
from cohorthub.accounts.model import Account, Session, allows
from cohorthub.api.http import container, in_thread
from cohorthub.bootstrap import Container
from cohorthub.errors import CohorthubError, InvalidInput, NotFound, RateLimited, ResourceLocked
from cohorthub.keys import same_secret
from cohorthub.text import storable_problem
from cohorthub.web import i18n
from cohorthub.web.canvas_form import path_count
from cohorthub.workspaces.model import Workspace
from cohorthub.workspaces.services import list_workspaces

PREFIX = "/dashboard"
SESSION_COOKIE = "cohorthub_session"
FORM_CSRF_COOKIE = "cohorthub_signin_csrf"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals["path_count"] = path_count  # forms.html: the audience split's paths, bounded


@dataclass
class Ctx:
    """What a signed-in request knows: account, session, workspaces, language, the form."""

    request: Request
    c: Container
    account: Account
    session: Session
    token: str
    workspaces: list[Workspace]
    workspace: Workspace | None
    language: str
    form: FormData | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def gettext(self, message: str) -> str:
        """`message` in the request's language."""
        return i18n.translations(self.language).gettext(message)

    @property
    def workspace_id(self) -> str:
        """The chosen workspace's id; `NoWorkspace` (404) when there is none yet."""
        if self.workspace is None:
            raise NoWorkspace("No workspace yet: create one with `cohorthub workspace create NAME`")
        return self.workspace.id

    @property
    def fmt(self) -> i18n.Formats:
        """Numbers and dates in the request's language."""
        return i18n.Formats(self.language)

    def can(self, action: str) -> bool:
        """Whether the account's role allows `action` (for showing controls; checked again on POST)."""
        return allows(self.account.role, action)

    def field(self, name: str, default: str = "") -> str:
        """A submitted form field as text."""
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else default


def form_fields(ctx: Ctx) -> dict[str, str]:
    """The submitted form's text fields (a POST's form was read by the CSRF check)."""
    return {k: v for k, v in (ctx.form or {}).items() if isinstance(v, str)}


class NoWorkspace(CohorthubError):
    """No workspace exists yet."""

    status = 404


def language_of(request: Request, account: Account | None) -> str:
    """The account's language, else the browser's `Accept-Language`."""
    if account is not None and account.language in i18n.LANGUAGES:
        return account.language
    return i18n.negotiate(request.headers.get("accept-language"))


def _load(request: Request) -> Ctx:
    c = container(request)
    token = request.cookies.get(SESSION_COOKIE) or ""
    with c.uow(readonly=True) as uow:
        account, session = accounts.current_session(uow=uow, token=token, now=c.now())
        workspaces = list_workspaces(uow=uow)
    chosen = next((w for w in workspaces if w.id == session.workspace_id), None)
    return Ctx(
        request=request,
        c=c,
        account=account,
        session=session,
        token=token,
        workspaces=workspaces,
        workspace=chosen or (workspaces[0] if workspaces else None),
        language=language_of(request, account),
    )


async def _check_csrf(request: Request, ctx: Ctx) -> None:
    sent = request.headers.get("x-csrf-token")
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        ctx.form = await request.form()
        for name, field_value in ctx.form.multi_items():
            if isinstance(field_value, str) and (problem := storable_problem(field_value)):
                raise InvalidInput(f"{name}: {problem}")
        value = ctx.form.get("csrf_token")
        sent = sent if sent is not None else value if isinstance(value, str) else None
    if not sent or not same_secret(sent, ctx.session.csrf_token):
        raise CsrfRejected("The form expired or did not come from this dashboard; reload the page")


class PageNotFound(NotFound):
    """No such dashboard page or action."""


class CsrfRejected(CohorthubError):
    """A state-changing request without this session's CSRF token."""

    status = 403


Handler = Callable[[Request, Ctx], Awaitable[Response]]


def page(action: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler: session, role check for `action`, CSRF on POST, errors as pages, timing."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            ctx: Ctx | None = None
            try:
                ctx = await in_thread(lambda: _load(request))
                if request.method != "GET":
                    await _check_csrf(request, ctx)
                if not ctx.can(action):
                    raise RoleForbids(f"The {ctx.account.role} role cannot do this")
                response = await handler(request, ctx)
            except NotSignedIn:
                response = _to_sign_in(request)
            except CohorthubError as exc:
                response = error_response(request, ctx, exc)
            timed(response, started)
            return response

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


def timed(response: Response, started: float) -> Response:
    """Add the server time spent so far as `Server-Timing: app;dur=MS`."""
    response.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


#: No framing (clickjacking), no MIME sniffing, no cached pages, no URL leaks to other sites.
_SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _to_sign_in(request: Request) -> Response:
    if _wants_json(request):
        return JSONResponse({"message": "Please sign in"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{PREFIX}/signin?next={quote(target, safe='')}", status_code=303)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "") or request.headers.get(
        "content-type", ""
    ).startswith("application/json")


def error_response(request: Request, ctx: Ctx | None, exc: CohorthubError) -> Response:
    """A domain error as JSON (for scripts) or as a page in the request's language."""
    headers = {}
    if isinstance(exc, RateLimited | ResourceLocked):
        headers["retry-after"] = str(exc.retry_after)
    if _wants_json(request):
        return JSONResponse({"message": exc.message}, status_code=exc.status, headers=headers)
    language = ctx.language if ctx else language_of(request, None)
    body = render_template(
        "error.html", language, ctx=ctx, status=exc.status, message=exc.message, title=_title(exc.status)
    )
    return HTMLResponse(body, status_code=exc.status, headers=headers)


def _title(status: int) -> str:
    return {
        400: "That did not work",
        401: "Please sign in",
        403: "Not allowed",
        404: "Not found",
        409: "That clashes with something that exists",
        429: "Too many attempts",
    }.get(status, "Something went wrong")


def render_template(name: str, language: str, **values: Any) -> str:
    """Render a template with the language's gettext and formats."""
    tr = i18n.translations(language)
    values.setdefault("nav", "")
    values.setdefault("title", "cohorthub")
    return _env.get_template(name).render(
        _=tr.gettext,
        ngettext=tr.ngettext,
        fmt=i18n.Formats(language),
        language=language,
        prefix=PREFIX,
        **values,
    )


def render(ctx: Ctx, name: str, *, status: int = 200, **values: Any) -> HTMLResponse:
    """A full page for a signed-in request."""
    return HTMLResponse(render_template(name, ctx.language, ctx=ctx, **values), status_code=status)


def redirect(path: str) -> RedirectResponse:
    """See-other to a dashboard path (after a successful POST)."""
    return RedirectResponse(PREFIX + path, status_code=303)
