"""Channels against real servers: SMTP refusals become bounces, RFC 8058 one-click unsubscribes,
webhooks retry 5xx and record failures, and the open pixel counts once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cohorthub.bootstrap import Container
from cohorthub.messaging import services
from cohorthub.messaging.channels.smtp import SmtpConfig, SmtpTransport
from cohorthub.messaging.channels.webhook import HttpWebhookTransport
from cohorthub.messaging.ports import Outcome, OutgoingWebhook
from cohorthub.runtimes import messaging_runtime
from cohorthub.store.tables import outbox, users
from tests.conftest import EndlessAnswer, LiveServer, RawHttpServer, free_port
from tests.e2e.messaging.conftest import SmtpSink
from tests.integration.segments import factories as f

NOW = time.time()


def _campaign(c: Container, ws: str, channel: str, message: dict[str, Any]) -> str:
    body = {"name": "C", "channel": channel, channel: message, "delivery": {"type": "now"}}
    with c.uow() as uow:
        program = services.create_program(uow=uow, workspace_id=ws, kind="campaign", raw=body, now=NOW)
    with c.uow() as uow:
        services.launch_program(uow=uow, workspace_id=ws, program_id=program.id, now=NOW)
    return program.id


def _the_one_failure(c: Container, *, sends: int, retries: int) -> dict[str, Any]:
    """The only webhook Failure event, once the Send and Retry events are counted."""
    types = _event_types(c)
    assert types.count("users.messages.webhook.Send") == sends
    assert types.count("users.messages.webhook.Retry") == retries
    assert types.count("users.messages.webhook.Failure") == 1
    with c.uow(readonly=True) as uow:
        payload = uow.conn.execute(
            select(outbox.c.payload).where(outbox.c.event_type == "users.messages.webhook.Failure")
        ).scalar_one()
    failure: dict[str, Any] = msgspec.json.decode(payload)
    return failure


def _receiver(receive: Callable[[Request], Awaitable[Response]]) -> tuple[int, uvicorn.Server]:
    """A webhook receiver on loopback (POST /{name}), started; its port and server."""
    port = free_port()
    app = Starlette(routes=[Route("/{name}", receive, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return port, server


def _event_types(c: Container) -> list[str]:
    with c.uow(readonly=True) as uow:
        return [r[0] for r in uow.conn.execute(select(outbox.c.event_type).order_by(outbox.c.seq))]


def test_smtp_bounces_unsubscribe_and_open(
    container: Container, live_server: LiveServer, smtp: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp
    sink.refuse = {"gone@example.com": "550 5.1.1 no such user", "full@example.com": "452 4.2.2 mailbox full"}
    with container.uow() as uow:
        ws = f.workspace(uow.conn, now=NOW)
        ok = f.user(uow.conn, ws, now=NOW, external_id="ok", email="ok@example.com")
        for name in ("gone", "full"):
            f.user(uow.conn, ws, now=NOW, external_id=name, email=f"{name}@example.com")
        uow.commit()
    runtime = messaging_runtime(container, email=SmtpTransport(SmtpConfig(port=port)))
    message = {"from": "news@shop.test", "subject": "S", "body": "<p>Hi</p>"}
    cid = _campaign(container, ws, "email", message)
    runtime.worker.round()
    assert sink.to() == ["ok@example.com"]
    types = _event_types(container)
    assert types.count("users.messages.email.Send") == 3
    assert types.count("users.messages.email.Delivery") == 1
    assert (
        types.count("users.messages.email.Bounce") == 1
        and types.count("users.messages.email.SoftBounce") == 1
    )
    mail = sink.received[0][1]
    unsubscribe = urlsplit(mail["List-Unsubscribe"].strip("<>"))
    with httpx.Client(base_url=live_server.url) as http:
        html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_payload(decode=True)
        assert isinstance(html, bytes)
        pixel = urlsplit(html.decode().split('img src="')[1].split('"')[0])
        for _ in range(2):
            assert http.get(pixel.path).headers["content-type"] == "image/gif"
        assert http.get(unsubscribe.path).status_code == 200  # a confirmation page changes nothing
        with container.uow(readonly=True) as uow:
            state = uow.conn.execute(select(users.c.email_subscribe).where(users.c.num == ok)).scalar()
        assert state is None
        one_click = http.post(unsubscribe.path, content=b"List-Unsubscribe=One-Click",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert one_click.status_code == 200
        assert http.post(unsubscribe.path[:-2] + "xx").status_code == 404
    with container.uow(readonly=True) as uow:
        state = uow.conn.execute(select(users.c.email_subscribe).where(users.c.num == ok)).scalar()
        stats = services.program_stats(uow=uow, workspace_id=ws, program_id=cid)
    assert state == "unsubscribed"
    assert (stats["delivered"], stats["bounced"], stats["soft_bounced"]) == (1, 1, 1)
    assert (stats["opened"], stats["unsubscribed"]) == (1, 1)
    types = _event_types(container)
    assert (
        types.count("users.messages.email.Open") == 1 and types.count("users.messages.email.Unsubscribe") == 1
    )
    # the unsubscribed user is left out of the next campaign
    _campaign(container, ws, "email", message)
    runtime.worker.round()
    assert sink.to().count("ok@example.com") == 1


def test_webhook_retries_5xx_then_succeeds_and_records_terminal_failures(container: Container) -> None:
    calls: list[tuple[str, bytes]] = []

    async def receive(request: Request) -> Response:
        calls.append((request.url.path, await request.body()))
        failures = sum(1 for path, _ in calls if path == request.url.path)
        if request.url.path == "/flaky" and failures < 3:
            return Response(status_code=503)
        return Response(status_code=500 if request.url.path == "/broken" else 200)

    port, server = _receiver(receive)
    try:
        with container.uow() as uow:
            ws = f.workspace(uow.conn, now=NOW)
            f.user(uow.conn, ws, now=NOW, external_id="flaky")
            f.user(uow.conn, ws, now=NOW, external_id="broken")
            uow.commit()
        runtime = messaging_runtime(container, webhook=HttpWebhookTransport(attempts=3, backoff=0.01))
        hook = {"url": f"http://127.0.0.1:{port}/{{{{${{user_id}}}}}}", "body": '{"id": "{{${user_id}}}"}'}
        _campaign(container, ws, "webhook", hook)
        runtime.worker.round()
    finally:
        server.should_exit = True
    assert [p for p, _ in calls].count("/flaky") == 3 and [p for p, _ in calls].count("/broken") == 3
    assert (b'{"id": "flaky"}') in [b for _, b in calls]
    failure = _the_one_failure(container, sends=2, retries=4)
    assert failure["properties"]["http_status_code"] == 500 and failure["properties"]["is_terminal"] is True


def _webhook_per_slug(
    c: Container, slugs: list[str], transport: HttpWebhookTransport
) -> tuple[list[str], str, str]:
    """A webhook campaign to `/{slug}` for one user per slug, sent in one worker round: the paths
    the receiver saw, the workspace and the campaign."""
    calls: list[str] = []

    async def receive(request: Request) -> Response:
        calls.append(request.url.path)
        return Response(status_code=200)

    port, server = _receiver(receive)
    try:
        with c.uow() as uow:
            ws = f.workspace(uow.conn, now=NOW)
            for i, slug in enumerate(slugs):
                f.user(uow.conn, ws, now=NOW, external_id=f"u{i}", custom={"slug": slug})
            uow.commit()
        runtime = messaging_runtime(c, webhook=transport)
        hook = {"url": f"http://127.0.0.1:{port}/{{{{custom_attribute.${{slug}}}}}}"}
        program_id = _campaign(c, ws, "webhook", hook)
        runtime.worker.round()
    finally:
        server.should_exit = True
    return calls, ws, program_id


def test_a_webhook_whose_url_renders_unsendable_fails_at_once_and_the_rest_are_sent(
    container: Container,
) -> None:
    """A user's attribute puts a control character into the URL: that message fails with the
    client's reason (no retries, as no retry can succeed), the round goes on, the others arrive."""
    transport = HttpWebhookTransport(attempts=3, backoff=0.01)
    calls, _, _ = _webhook_per_slug(container, ["good", "ba\x01d"], transport)
    assert calls == ["/good"]
    props = _the_one_failure(container, sends=2, retries=0)["properties"]
    assert props["webhook_failure_source"] == "network" and "http_status_code" not in props
    assert "InvalidURL" in props["raw_response"] and props["retry_count"] == 0


class _FlawedTransport(HttpWebhookTransport):
    """Raises for one path, as a defect in building a request would; sends the others."""

    def send(self, request: OutgoingWebhook) -> Outcome:
        if request.url.endswith("/flawed"):
            raise RuntimeError("no request for this one")
        return super().send(request)


def test_a_webhook_send_that_raises_fails_that_message_and_the_batch_goes_on(container: Container) -> None:
    """Not the whole batch in doubt (never sent, never re-sent): the one message fails with the error."""
    transport = _FlawedTransport(attempts=1)
    calls, ws, program_id = _webhook_per_slug(container, ["one", "flawed", "two"], transport)
    assert sorted(calls) == ["/one", "/two"]
    with container.uow(readonly=True) as uow:
        counts = services.program_stats(uow=uow, workspace_id=ws, program_id=program_id)
    assert (counts["delivered"], counts["failed"], counts["in_doubt"]) == (2, 1, 0)
    props = _the_one_failure(container, sends=3, retries=0)["properties"]
    assert props["raw_response"] == "RuntimeError: no request for this one"


def test_a_webhook_endpoint_whose_answer_never_ends_is_read_only_so_far() -> None:
    """The first bytes are the failure's text; the rest is not read (nor held in memory)."""
    endless = EndlessAnswer(400, total=512 << 20)
    dripping = EndlessAnswer(200, total=400, piece=1, pause=0.05)  # 20 s, were it all read
    transport = HttpWebhookTransport(timeout=1, attempts=1)
    try:
        failed = transport.send(OutgoingWebhook(url=endless.url, method="POST", headers={}, body=b"{}"))
        delivered = transport.send(OutgoingWebhook(url=dripping.url, method="POST", headers={}, body=b"{}"))
        assert endless.done.wait(10) and dripping.done.wait(10)
    finally:
        transport.close()
        endless.close()
        dripping.close()
    assert (failed.state, failed.status, failed.detail) == ("failed", 400, "x" * 1000)
    assert endless.sent < 64 << 20
    assert (delivered.state, delivered.status) == ("delivered", 200) and dripping.sent < 400


class _DrippingHead(RawHttpServer):
    """Answers 200 with a head that never ends: a header line every `pause` seconds, `lines` in all
    (each read of the client gets something well within its timeout)."""

    def __init__(self, *, lines: int, pause: float) -> None:
        self.lines, self.pause = lines, pause
        super().__init__("/dripping")

    def answer(self, conn: socket.socket) -> None:
        """The status line, then one header line at a time."""
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for i in range(self.lines):
            time.sleep(self.pause)
            conn.sendall(b"X-Drip-%d: y\r\n" % i)
        conn.sendall(b"Content-Length: 0\r\n\r\n")


def test_a_webhook_endpoint_that_drips_its_head_fails_within_the_timeout() -> None:
    """A server that sends a header line every 0.2 s (never idle for the 1 s timeout) holds a send for
    the timeout, not for as long as it keeps dripping: the sending thread serves every campaign."""
    dripping = _DrippingHead(lines=60, pause=0.2)  # 12 s, were it all read
    transport = HttpWebhookTransport(timeout=1, attempts=2, backoff=0)
    try:
        started = time.monotonic()
        outcome = transport.send(OutgoingWebhook(url=dripping.url, method="POST", headers={}, body=b"{}"))
        took = time.monotonic() - started
    finally:
        transport.close()
        dripping.close()
    assert (outcome.state, outcome.status, outcome.retries) == ("failed", None, 1)
    assert "ReadTimeout" in outcome.detail
    assert took < 8  # reading the whole head would take 12 s
