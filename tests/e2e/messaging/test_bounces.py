"""Bounces reported after the SMTP session (RFC 3464 DSNs), matched by each message's signed return path.

A campaign goes out through a real SMTP server (aiosmtpd); the DSNs are built with the standard
library's `email` package as a mail server builds them, and handed to cohorthub's SMTP bounce listener
(over SMTP, `MAIL FROM:<>`) or to `POST /messaging/bounces`.
"""

from __future__ import annotations

import email.policy
import os
import smtplib
import subprocess
import sys
import time
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import httpx
import msgspec
from sqlalchemy import select

from cohorthub.bootstrap import Container
from cohorthub.messaging import bounces, services
from cohorthub.messaging.channels.bounce_listener import BounceListener
from cohorthub.messaging.channels.smtp import SmtpConfig, SmtpTransport
from cohorthub.runtimes import messaging_runtime, tracker_for
from cohorthub.store.messaging.schema import sends
from cohorthub.store.tables import outbox
from cohorthub.workspaces import services as workspaces
from tests.conftest import LiveServer, free_port
from tests.e2e.messaging.conftest import SmtpSink
from tests.integration.segments import factories as f

NOW = time.time()
MAIL = {"from": "Shop <news@shop.test>", "subject": "S", "body": "<p>Hi</p>"}


def dsn(
    return_path: str, recipient: str, *, action: str, status: str, diagnostic: str, to_header: bool = True
) -> bytes:
    """A delivery status notification as an MTA sends it: multipart/report with a human part, the
    message/delivery-status fields and the original message's headers."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.com>"
    if to_header:
        report["To"] = return_path
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.attach(
        MIMEText(f"I'm sorry to have to inform you that your message could not be delivered to {recipient}.")
    )
    status_part = Message()
    status_part.set_type("message/delivery-status")
    per_message = Message()
    per_message["Reporting-MTA"] = "dns; mx.example.com"
    per_message["Arrival-Date"] = "Tue, 1 Dec 2026 03:00:00 +0000"
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Original-Recipient"] = f"rfc822;{recipient}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Remote-MTA"] = "dns; mail.example.com"
    per_recipient["Diagnostic-Code"] = f"smtp; {diagnostic}"
    status_part.set_payload([per_message, per_recipient])
    report.attach(status_part)
    headers = MIMEText(
        f"Return-Path: <{return_path}>\nFrom: news@shop.test\nTo: {recipient}\nSubject: S\n", "rfc822-headers"
    )
    report.attach(headers)
    return report.as_bytes(policy=email.policy.SMTP)  # CRLF line ends, as on the wire


def _setup(container: Container, port: int, names: list[str]) -> tuple[str, dict[str, int]]:
    with container.uow() as uow:
        ws = f.workspace(uow.conn, now=NOW)
        nums = {n: f.user(uow.conn, ws, now=NOW, external_id=n, email=f"{n}@example.com") for n in names}
        uow.commit()
    return ws, nums


def _send_campaign(container: Container, ws: str, port: int, name: str = "C") -> str:
    body = {"name": name, "channel": "email", "email": MAIL, "delivery": {"type": "now"}}
    with container.uow() as uow:
        program = services.create_program(uow=uow, workspace_id=ws, kind="campaign", raw=body, now=NOW)
    with container.uow() as uow:
        services.launch_program(uow=uow, workspace_id=ws, program_id=program.id, now=NOW)
    runtime = messaging_runtime(container, email=SmtpTransport(SmtpConfig(port=port)))
    runtime.worker.round()
    runtime.sender.close()
    return program.id


def _return_paths(sink: SmtpSink) -> dict[str, str]:
    return {rcpts[0]: sender for (rcpts, _), sender in zip(sink.received, sink.senders, strict=True)}


def _events(container: Container, kind: str) -> list[dict[str, Any]]:
    with container.uow(readonly=True) as uow:
        rows = uow.conn.execute(
            select(outbox.c.payload).where(outbox.c.event_type == kind).order_by(outbox.c.seq)
        )
        return [msgspec.json.decode(r[0]) for r in rows]


def _states(container: Container, program_id: str) -> dict[str, str]:
    with container.uow(readonly=True) as uow:
        rows = uow.conn.execute(
            select(sends.c.address, sends.c.state).where(sends.c.program_id == program_id)
        )
        return {str(a): str(s) for a, s in rows}


def _ignored(container: Container) -> int:
    with container.uow(readonly=True) as uow:
        return bounces.ignored_count(uow)


def test_a_dsn_over_smtp_bounces_its_message_and_later_sends_skip_the_address(
    container: Container, smtp: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp
    ws, _ = _setup(container, port, ["ana", "bob", "cy"])
    first = _send_campaign(container, ws, port)
    paths = _return_paths(sink)
    tracker = tracker_for(container)
    assert {a: tracker.bounced_row(p) is not None for a, p in paths.items()} == dict.fromkeys(paths, True)
    assert all(p.startswith("news+cb") and p.endswith("@shop.test") for p in paths.values())

    record = _recorder(container)
    listener_port = free_port()
    listener = BounceListener(record, host="127.0.0.1", port=listener_port)
    listener.start()
    try:
        with smtplib.SMTP("127.0.0.1", listener_port) as mta:
            unknown = "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown"
            hard = dsn(paths["bob@example.com"], "bob@example.com", action="failed", status="5.1.1",
                       diagnostic=unknown)  # fmt: skip
            mta.sendmail("", [paths["bob@example.com"]], hard)
            mta.sendmail("", [paths["bob@example.com"]], hard)  # the same report again: no second event
            late = dsn(paths["cy@example.com"], "cy@example.com", action="delayed", status="4.4.1",
                       diagnostic="421 4.4.1 connection timed out")  # fmt: skip
            mta.sendmail("", [paths["cy@example.com"]], late)
            forged = paths["ana@example.com"].replace("+cb", "+cb9")  # another row id, the same signature
            mta.sendmail("", [forged], dsn(forged, "ana@example.com", action="failed", status="5.1.1",
                                           diagnostic="550 no"))  # fmt: skip
            mta.sendmail("", ["postmaster@shop.test"], b"Subject: hello\r\n\r\nnot a report\r\n")
    finally:
        listener.stop()

    assert _states(container, first) == {"ana@example.com": "delivered", "bob@example.com": "bounced",
                                         "cy@example.com": "delivered"}  # fmt: skip
    [bounce] = _events(container, "users.messages.email.Bounce")
    props = bounce["properties"]
    assert props["email_address"] == "bob@example.com" and props["campaign_id"] == first
    assert props["bounce_reason"].startswith("550 5.1.1 <bob@example.com>: Recipient address rejected")
    assert props["esp"] == "smtp" and props["from_domain"] == "shop.test" and props["app_group_id"] == ws
    assert bounce["user"]["external_user_id"] == "bob"
    [deferral] = _events(container, "users.messages.email.Deferral")
    assert deferral["properties"]["deferral_reason"] == "421 4.4.1 connection timed out"
    assert deferral["properties"]["recipient_domain"] == "example.com"
    assert _ignored(container) == 3  # the repeated report, the forged return path, the stray message

    sink.received.clear()
    sink.senders.clear()
    second = _send_campaign(container, ws, port, "D")
    assert sorted(sink.to()) == ["ana@example.com", "cy@example.com"]  # bob bounced for good: skipped
    with container.uow(readonly=True) as uow:
        stats = services.program_stats(uow=uow, workspace_id=ws, program_id=second)
        jobs = uow.messaging.jobs.list(second)
    assert stats["sent"] == 2 and "unreachable 1" in jobs[0]["note"]


def _recorder(container: Container) -> Any:
    tracker = tracker_for(container)

    def record(raw: bytes, recipients: list[str]) -> bounces.BounceResult:
        with container.uow() as uow:
            return bounces.record_bounce(
                uow=uow, tracker=tracker, raw=raw, recipients=recipients, now=time.time()
            )

    return record


def test_a_soft_bounce_handed_over_http_and_what_the_endpoint_refuses(
    container: Container, live_server: LiveServer, smtp: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp
    with container.uow() as uow:
        ws, key = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    with container.uow() as uow:
        f.user(uow.conn, ws.id, now=NOW, external_id="ana", email="ana@example.com")
        uow.commit()
    with container.uow() as uow:
        other, other_key = workspaces.create_workspace(uow=uow, name="Other", now=NOW)
    with container.uow() as uow:
        reader = workspaces.create_rest_key(
            uow=uow, workspace_id=ws.id, name="r", permissions=["campaigns.read"], now=NOW
        )
    program = _send_campaign(container, ws.id, port)
    path = _return_paths(sink)["ana@example.com"]
    soft = dsn(path, "ana@example.com", action="failed", status="4.2.2", diagnostic="452 4.2.2 mailbox full")
    with httpx.Client(base_url=live_server.url) as http:

        def post(body: bytes, key_text: str, **params: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {key_text}", "Content-Type": "message/rfc822"}
            return http.post("/messaging/bounces", content=body, params=params, headers=headers)

        assert post(soft, reader.key).status_code == 403
        assert post(soft, "nope").status_code == 401
        assert post(b"  ", key.key).status_code == 400
        assert post(soft, other_key.key).json()["outcome"] == "ignored"  # another workspace's message
        assert _states(container, program) == {"ana@example.com": "delivered"}
        no_header = dsn(path, "ana@example.com", action="failed", status="4.2.2",
                        diagnostic="452 4.2.2 mailbox full", to_header=False)  # fmt: skip
        assert post(no_header, key.key).json()["outcome"] == "ignored"  # nothing says where it was sent
        answer = post(no_header, key.key, recipient=path)
        assert answer.status_code == 200 and answer.json()["outcome"] == "soft_bounced", answer.text
        assert post(soft, key.key).json()["outcome"] == "ignored"  # repeated
    assert _states(container, program) == {"ana@example.com": "soft_bounced"}
    [event] = _events(container, "users.messages.email.SoftBounce")
    assert event["properties"]["bounce_reason"] == "452 4.2.2 mailbox full"
    assert other.id != ws.id
    sink.received.clear()
    sink.senders.clear()
    _send_campaign(container, ws.id, port, "D")
    assert sink.to() == ["ana@example.com"]  # a soft bounce does not make the address unreachable


def test_the_cli_bounce_listener_records_a_bounce(
    container: Container, database_url: str, smtp: tuple[SmtpSink, int]
) -> None:
    """`cohorthub campaigns bounces --listen` in its own process, reached over SMTP as an MTA would."""
    sink, port = smtp
    ws, _ = _setup(container, port, ["ana"])
    program = _send_campaign(container, ws, port)
    path = _return_paths(sink)["ana@example.com"]
    listen = free_port()
    cli = [sys.executable, "-m", "cohorthub.cli.main"]
    args = [*cli, "campaigns", "bounces", "--listen", f"127.0.0.1:{listen}", "--database", database_url]
    listener = subprocess.Popen(
        args, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                mta = smtplib.SMTP("127.0.0.1", listen, timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline and listener.poll() is None, "the listener did not start"
                time.sleep(0.1)
        with mta:
            report = dsn(
                path, "ana@example.com", action="failed", status="5.2.1", diagnostic="550 5.2.1 disabled"
            )
            mta.sendmail("", [path], report)
    finally:
        listener.terminate()
        assert listener.wait(timeout=30) is not None
    assert _states(container, program) == {"ana@example.com": "bounced"}
    assert [e["properties"]["bounce_reason"] for e in _events(container, "users.messages.email.Bounce")] == [
        "550 5.2.1 disabled"
    ]
