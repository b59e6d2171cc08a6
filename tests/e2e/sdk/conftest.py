"""Browser fixtures: the real @braze/web-sdk (bin/ensure-web-sdk) served to Debian's Chromium.

The page is served from its own loopback port, so every SDK request to cohorthub is cross-origin
and goes through the CORS preflight, as on a real site.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cohorthub.apps import services as apps
from cohorthub.bootstrap import Container

ROOT = Path(__file__).resolve().parents[3]
SDK_DIR = ROOT / "var" / "web-sdk"
PAGE = """<!doctype html><html><body><script type="module">
import * as braze from "/node_modules/@braze/web-sdk/src/index.js";
window.braze = braze;
window.flush = () => new Promise((resolve) => braze.requestImmediateDataFlush(resolve));
window.sdkReady = true;
</script></body></html>"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A loopback web server with the SDK's ES modules and a page that imports them."""
    if not (SDK_DIR / "node_modules" / "@braze" / "web-sdk" / "package.json").is_file():
        pytest.fail("the Web SDK is not installed: run bin/ensure-web-sdk (bin/test does)")
    root = tmp_path_factory.mktemp("page")
    (root / "index.html").write_text(PAGE, encoding="utf-8")
    (root / "node_modules").symlink_to(SDK_DIR / "node_modules")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright, for this package's tests only.

    Playwright's sync API keeps an event loop running in the main thread while it is started; stopping it
    when the package ends keeps it from leaking into later tests that run their own loops.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("COHORTHUB_CHROMIUM", "/usr/bin/chromium"))
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, page_url: str) -> Iterator[Any]:
    """A fresh browser context (empty storage: a new device) with the SDK loaded."""
    context = chromium.new_context()
    tab = context.new_page()
    tab.goto(page_url)
    tab.wait_for_function("window.sdkReady === true")
    yield tab
    context.close()


def create_sdk_app(c: Container, workspace_id: str) -> str:
    """A web app of the workspace; returns its SDK API key."""
    with c.uow() as uow:
        _, key = apps.create_app(uow=uow, workspace_id=workspace_id, name="web", now=time.time())
    return key


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
