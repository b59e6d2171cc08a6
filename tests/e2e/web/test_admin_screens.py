"""The other screens in the browser, as an admin: Settings (a REST API key shown once, accounts),
Currents (a connector, its health and a test send to a live receiver), Users (look-up by e-mail);
axe-core finds no serious violation on any of them."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.web.conftest import World, serious_violations, shot, sign_in


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[str]:
    """A Currents endpoint on loopback that records what it is sent."""
    _Receiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_settings_currents_and_users_screens(page: Page, world: World, receiver: str) -> None:
    sign_in(page, world.url, "admin@acme.io")
    page.goto(f"{world.url}/dashboard/settings")
    page.get_by_label("Key name").fill("reporting")
    page.get_by_label("segments.list").check()
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-rest-key").inner_text()
    assert re.fullmatch(r"[0-9a-f-]{36}", key)
    expect(page.locator("tr", has_text="reporting")).to_contain_text("segments.list")
    assert serious_violations(page) == []
    shot(page, "en-06-settings")

    page.goto(f"{world.url}/dashboard/currents")
    page.get_by_label("Kind").select_option("http")
    page.get_by_label("URL").fill(receiver)
    page.get_by_role("button", name="Create connector").click()
    page.get_by_role("button", name="Send a test event").click()
    expect(page.get_by_role("status")).to_contain_text("HTTP 200")
    assert b'"name":"cohorthub.test"' in _Receiver.bodies[0]
    assert serious_violations(page) == []
    shot(page, "en-07-currents")

    page.goto(f"{world.url}/dashboard/users")
    page.get_by_label("Look up by").select_option("email")
    page.get_by_label("Value").fill("u3@example.com")
    page.get_by_role("button", name="Look up").click()
    expect(page.locator(".user h2")).to_have_text("u3")
    expect(page.locator(".user")).to_contain_text("ES")
    assert serious_violations(page) == []
    shot(page, "en-08-users")
