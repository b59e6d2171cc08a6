"""Browser tests: Debian's Chromium driven by Playwright, headless, against a live server.

The browser is started once per session. `COHORTHUB_CHROMIUM` names another binary.
Screenshots of every screen go to var/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, sync_playwright

from cohorthub.accounts import services as accounts
from cohorthub.accounts.passwords import Argon2Hasher
from cohorthub.bootstrap import Container
from cohorthub.config import Settings
from cohorthub.identity import services as identity
from cohorthub.partners.services import issue_partner_key
from cohorthub.workspaces import services as workspaces
from tests.conftest import free_port
from tests.e2e.messaging.conftest import SmtpSink

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "var" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
PASSWORD = "a long password 1"
#: Users: u0..u9; country ES for odd numbers, FR for even ones.
USERS = [
    {"external_id": f"u{i}", "country": "ES" if i % 2 else "FR", "email": f"u{i}@example.com"}
    for i in range(10)
]
_hasher = Argon2Hasher()
SMTP_PORT = free_port()


@dataclass
class World:
    """What a dashboard test starts from."""

    url: str
    workspace_id: str
    rest_key: str
    partner_key: str


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Browser tests exercise the web edge; the stores are covered on both backends elsewhere."""
    import shutil

    target = tmp_path / "cohorthub.sqlite"
    shutil.copy(request.getfixturevalue("sqlite_template"), target)
    return f"sqlite:///{target}"


def make_account(c: Container, email: str, role: str) -> None:
    """A dashboard account with the test password."""
    with c.uow() as uow:
        accounts.create_account(
            uow=uow, hasher=_hasher, email=email, password=PASSWORD, role=role, now=c.now()
        )


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server on loopback."""
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    yield sink
    controller.stop()


def sink_settings(database_url: str) -> Settings:
    """Settings that send e-mail to the `smtp_sink` (for a module's `settings` fixture)."""
    return Settings(
        database_url=database_url, public_url="http://testserver", smtp_url=f"smtp://127.0.0.1:{SMTP_PORT}"
    )


@pytest.fixture
def world(container: Container, live_server: object) -> World:
    """A workspace with ten users, Heap's partner key, an admin, a marketer and a viewer."""
    with container.uow() as uow:
        ws, key = workspaces.create_workspace(uow=uow, name="Acme", now=container.now())
    with container.uow() as uow:
        partner_key = issue_partner_key(uow=uow, partner="heap", now=container.now())
    with container.uow() as uow:
        identity.track_users(
            uow=uow, workspace_id=ws.id, body={"attributes": USERS}, listeners=container.identity_listeners,
            now=container.now(),
        )  # fmt: skip
    for email, role in (
        ("admin@acme.io", "admin"),
        ("marketer@acme.io", "marketer"),
        ("viewer@acme.io", "viewer"),
    ):
        make_account(container, email, role)
    return World(url=live_server.url, workspace_id=ws.id, rest_key=key.key, partner_key=partner_key)  # type: ignore[attr-defined]


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Chromium from Debian."""
    executable = os.environ.get("COHORTHUB_CHROMIUM") or "/usr/bin/chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) in English."""
    context = browser.new_context(locale="en-US", extra_http_headers={"Accept-Language": "en-US,en;q=0.9"})
    context.set_default_timeout(10_000)
    errors: list[str] = []
    tab = context.new_page()
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == [], "script errors in the page"


def sign_in(page: Page, url: str, email: str) -> None:
    """Sign in through the form."""
    page.goto(f"{url}/dashboard/")
    page.get_by_label(re.compile("E-mail|Correo")).fill(email)
    page.get_by_label(re.compile("Password|Contraseña")).fill(PASSWORD)
    page.locator("button[type=submit].primary").click()
    page.wait_for_url(re.compile(r"/dashboard/partners"))


@contextmanager
def session(world: World, email: str) -> Iterator[tuple[httpx.Client, str]]:
    """An HTTP client signed in through the form, and the session's CSRF token."""
    with httpx.Client(base_url=world.url, follow_redirects=False) as client:
        form = client.get("/dashboard/signin")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        signed = client.post(
            "/dashboard/signin", data={"email": email, "password": PASSWORD, "csrf_token": token[1]}
        )
        assert signed.status_code == 303, signed.text
        csrf = re.search(r'data-csrf="([^"]+)"', client.get("/dashboard/partners").text)
        assert csrf is not None
        yield client, csrf[1]


def shot(page: Page, name: str) -> None:
    """Save a full-page screenshot under var/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the current page."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in found if v["impact"] in ("serious", "critical")
    ]


def import_cohort(world: World, data_import_key: str, cohort_id: str, name: str, user_ids: list[str]) -> None:
    """Play Heap: name a cohort and add users to it over the partner API."""
    creds = {"partner_api_key": world.partner_key, "client_secret": data_import_key, "cohort_id": cohort_id}
    with httpx.Client(base_url=world.url) as client:
        r = client.post(
            "/partners/heap/cohorts", json={**creds, "name": name, "created_at": "2026-11-01T10:00:00Z"}
        )
        assert r.status_code == 201 or r.status_code == 200, r.text
        r = client.post(
            "/partners/heap/cohorts/users", json={**creds, "cohort_changes": [{"user_ids": user_ids}]}
        )
        assert r.status_code == 201 or r.status_code == 200, r.text
