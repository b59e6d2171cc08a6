"""The server stores a batch and then answers 500 (a lost response): the SDK re-queues and sends the
same events again, and they are stored once (deduplicated by the events' own identity)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cohorthub.api.app import create_app
from cohorthub.apps import services as apps
from cohorthub.bootstrap import Container
from cohorthub.workspaces import services as workspaces
from tests.conftest import LiveServer
from tests.e2e.sdk.conftest import create_sdk_app, wait_until


class FailOnce:
    """Runs the app, then replaces the first SDK data answer that carries a custom event by a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.failed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or self.failed:
            await self.app(scope, receive, send)
            return
        body = b""
        start: Message = {}

        async def recording() -> Message:
            nonlocal body
            message = await receive()
            body += message.get("body", b"")
            return message

        async def respond(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif b'"name":"ce"' in body and not self.failed:
                self.failed += 1
                await send({"type": "http.response.start", "status": 500, "headers": _cors(scope)})
                await send({"type": "http.response.body", "body": b'{"message":"Internal server error"}'})
            else:
                await send(start)
                await send(message)

        await self.app(scope, recording, respond)


def _cors(scope: Scope) -> list[tuple[bytes, bytes]]:
    origin = dict(scope["headers"]).get(b"origin", b"*")
    return [(b"access-control-allow-origin", origin), (b"content-type", b"application/json")]


@pytest.fixture
def failing_server(container: Container) -> Iterator[tuple[LiveServer, FailOnce]]:
    """The live app behind `FailOnce`."""
    wrapper = FailOnce(create_app(container))
    with LiveServer(container, app=wrapper) as server:
        yield server, wrapper


def test_a_retried_batch_is_stored_once(
    container: Container, failing_server: tuple[LiveServer, FailOnce], page: Any
) -> None:
    server, wrapper = failing_server
    with container.uow() as uow:
        ws, rest = workspaces.create_workspace(uow=uow, name="Acme", now=time.time())
    key = create_sdk_app(container, ws.id)
    page.evaluate(
        """([key, url]) => {
            braze.initialize(key, {baseUrl: url});
            braze.openSession();
            braze.logCustomEvent("added_to_cart", {sku: "a"});
            braze.logPurchase("sku-a", 5, "EUR", 1);
        }""",
        [key, server.url],
    )
    assert page.evaluate("() => flush()") is False  # the 500: the SDK keeps the events queued
    assert wrapper.failed == 1
    assert page.evaluate("() => flush()") is True  # the SDK's retry of the same events
    device_id = page.evaluate("() => braze.getDeviceId()")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {rest.key}"}) as http:

        def exported() -> dict[str, Any]:
            users = http.post("/users/export/ids", json={"device_id": device_id}).json()["users"]
            return users[0] if users else {}

        wait_until(lambda: bool(exported().get("custom_events")))
        user = exported()
    assert [(e["name"], e["count"]) for e in user["custom_events"]] == [("added_to_cart", 1)]
    assert [(p["name"], p["count"]) for p in user["purchases"]] == [("sku-a", 1)]
    with container.uow(readonly=True) as uow:
        [(_, counters)] = apps.list_apps(uow=uow, workspace_id=ws.id)
    assert counters["duplicates"] == 2  # the custom event and the purchase, sent twice
