"""The re-engagement scenario end to end, on both stores: a partner cohort import adds users, a Canvas
that starts when a user enters that cohort e-mails them through a real SMTP server, one clicks the
tracked link and converts, and the e-mail, click, Canvas entry and conversion reach a Currents sink."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from cohorthub.bootstrap import Container
from cohorthub.cli.currents import start_worker
from cohorthub.cli.sink import Sink
from cohorthub.currents import services as currents
from cohorthub.messaging.channels.smtp import SmtpConfig, SmtpTransport
from cohorthub.messaging.ports import MemoryWebhookTransport
from cohorthub.runtimes import start_messaging
from tests.conftest import LiveServer
from tests.e2e.messaging.conftest import SmtpSink, wait_for
from tests.integration.cohorts.factories import make_tenant

CANVAS: dict[str, Any] = {
    "name": "Trial abandoners win-back",
    "entry": {"type": "cohort", "partner": "heap", "cohort_id": "trial-left"},
    "steps": [
        {
            "id": "mail", "name": "Come back", "type": "message", "channel": "email",
            "email": {
                "from": "Shop <news@shop.test>",
                "subject": "{{${first_name} | default: 'Friend'}}, your trial is waiting",
                "body": '<html><body><p>Hi {{${first_name}}}</p><a href="https://shop.test/upgrade">Upgrade</a>'
                '<p><a href="{{${set_user_to_unsubscribed_url}}}">Unsubscribe</a></p></body></html>',
            },
        },
    ],
    "conversion": {"event": "upgraded", "window_seconds": 86400},
}  # fmt: skip


def _types(sink: Sink) -> list[tuple[str, str | None]]:
    events = [msgspec.json.decode(raw) for raw in list(sink.events)]
    return [(e["event_type"], e["user"].get("external_user_id")) for e in events]


def test_partner_import_to_canvas_email_click_conversion_into_currents(
    container: Container, live_server: LiveServer, smtp: tuple[SmtpSink, int], currents_sink: tuple[Sink, str]
) -> None:
    smtp_sink, smtp_port = smtp
    sink, sink_url = currents_sink
    tenant = make_tenant(container)
    auth = {"Authorization": f"Bearer {tenant.rest_key}"}
    with container.uow() as uow:
        currents.create_connector(
            uow=uow,
            workspace_id=tenant.workspace_id,
            kind="http",
            url=sink_url,
            token="t0ken",
            now=time.time(),
        )
    stop_currents, _ = start_worker(container, timeout=5)
    stop_messaging, _ = start_messaging(
        container, email=SmtpTransport(SmtpConfig(port=smtp_port)), webhook=MemoryWebhookTransport()
    )
    try:
        with httpx.Client(base_url=live_server.url, timeout=30) as http:
            attributes = [
                {"external_id": "ana", "email": "ana@example.com", "first_name": "Ana"},
                {"external_id": "bo", "email": "bo@example.com"},
                {"external_id": "cy", "email": "cy@example.com"},
            ]
            assert http.post("/users/track", json={"attributes": attributes}, headers=auth).status_code == 201
            named = http.post(
                "/partners/heap/cohorts",
                json=tenant.body(cohort_id="trial-left", name="Left", created_at="2024-01-01T00:00:00Z"),
            )
            assert named.status_code == 201, named.text
            created = http.post("/messaging/canvases", json=CANVAS, headers=auth)
            assert created.status_code == 201, created.text
            canvas_id = created.json()["id"]
            assert (
                http.post(f"/messaging/canvases/{canvas_id}/launch", headers=auth).json()["status"]
                == "active"
            )
            body = tenant.body(cohort_id="trial-left", cohort_changes=[{"user_ids": ["ana", "bo"]}])
            assert http.post("/partners/heap/cohorts/users", json=body).status_code == 201

            wait_for(lambda: len(smtp_sink.to()) == 2)
            assert sorted(smtp_sink.to()) == ["ana@example.com", "bo@example.com"]
            message = next(m for rcpt, m in smtp_sink.received if rcpt == ["ana@example.com"])
            assert message["Subject"] == "Ana, your trial is waiting"
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_payload(
                decode=True
            )
            assert isinstance(html, bytes)
            links = re.findall(r'href="([^"]+)"', html.decode())
            tracked = urlsplit(next(u for u in links if "/t/c/" in u).replace("&amp;", "&"))
            click = f"{tracked.path}?{tracked.query}"  # links name the public URL, not the test server
            followed = http.get(click, follow_redirects=False)
            assert (followed.status_code, followed.headers["location"]) == (302, "https://shop.test/upgrade")
            forged = http.get(click.replace("/t/c/", "/t/c/9"), follow_redirects=False)
            assert forged.status_code == 404
            event = {
                "external_id": "ana",
                "name": "upgraded",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            assert http.post("/users/track", json={"events": [event]}, headers=auth).status_code == 201

            wanted = {
                ("users.canvas.Entry", "ana"), ("users.canvas.Entry", "bo"),
                ("users.messages.email.Send", "ana"), ("users.messages.email.Delivery", "ana"),
                ("users.messages.email.Click", "ana"), ("users.canvas.Conversion", "ana"),
            }  # fmt: skip
            wait_for(lambda: wanted <= set(_types(sink)))
            assert ("users.canvas.Conversion", "bo") not in _types(sink)
            stats = http.get(f"/messaging/canvases/{canvas_id}/stats", headers=auth).json()
            assert stats["entries"]["entered"] == 2 and stats["entries"]["converted"] == 1
            assert stats["steps"]["mail"]["delivered"] == 2 and stats["steps"]["mail"]["clicked"] == 1
    finally:
        stop_messaging.set()
        stop_currents.set()
    assert len(smtp_sink.to()) == 2  # nobody was e-mailed twice
