"""Campaigns through the real stores: create, preview, launch, dispatch exactly once, events, stats."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from cohorthub.bootstrap import Container
from cohorthub.messaging import services, triggers
from cohorthub.messaging.errors import InvalidProgram, InvalidTemplate, ProgramStateConflict
from cohorthub.messaging.ports import MemoryEmailTransport, MemoryWebhookTransport
from cohorthub.runtimes import messaging_runtime
from cohorthub.store.tables import outbox
from cohorthub.workspaces import services as workspaces
from tests.integration.segments import factories as f

NOW = time.time()
EMAIL = {
    "from": "Shop <news@shop.test>",
    "subject": "Hi {{${first_name} | default: 'there'}}",
    "body": '<p>Plan {{custom_attribute.${plan}}} <a href="https://shop.test/x?a=1">go</a> '
    '<a href="{{${set_user_to_unsubscribed_url}}}">unsubscribe</a></p>',
}


def campaign(**overrides: Any) -> dict[str, Any]:
    """A campaign definition to all users (now)."""
    return {"name": "Win back", "channel": "email", "email": EMAIL, "delivery": {"type": "now"}, **overrides}


def _setup(c: Container, n: int = 5) -> tuple[str, list[int]]:
    with c.uow() as uow:
        ws, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    with c.uow() as uow:
        nums = [
            f.user(uow.conn, ws.id, now=NOW, external_id=f"u{i}", email=f"u{i}@example.com",
                   first_name="Ana" if i == 0 else None, custom={"plan": "gold"})
            for i in range(n)
        ]  # fmt: skip
        nums.append(f.user(uow.conn, ws.id, now=NOW, external_id="noemail"))
        nums.append(
            f.user(
                uow.conn,
                ws.id,
                now=NOW,
                external_id="gone",
                email="g@example.com",
                email_subscribe="unsubscribed",
            )
        )
        uow.commit()
    return ws.id, nums


def _events(c: Container, prefix: str) -> list[dict[str, Any]]:
    with c.uow(readonly=True) as uow:
        rows = uow.conn.execute(select(outbox.c.payload).where(outbox.c.event_type.like(prefix + "%")))
        return [msgspec.json.decode(r[0]) for r in rows]


def test_campaign_to_everyone_sends_once_to_reachable_users_with_events(container: Container) -> None:
    ws, _ = _setup(container)
    email = MemoryEmailTransport()
    rt = messaging_runtime(container, email=email, webhook=MemoryWebhookTransport())
    with container.uow() as uow:
        program = services.create_program(uow=uow, workspace_id=ws, kind="campaign", raw=campaign(), now=NOW)
    with container.uow(readonly=True) as uow:
        preview = services.preview_campaign(
            uow=uow, indexes=container.segments, membership=container.membership, workspace_id=ws,
            program_id=program.id, external_id="u0", now=NOW,
        )  # fmt: skip
    assert (preview.size, preview.reachable) == (7, 5)
    assert preview.rendered is not None and preview.rendered["subject"] == "Hi Ana"
    with container.uow() as uow:
        services.launch_program(uow=uow, workspace_id=ws, program_id=program.id, now=NOW)
    assert rt.worker.round() > 0
    assert sorted(m.to for m in email.sent) == [f"u{i}@example.com" for i in range(5)]
    assert rt.worker.round() == 0 or len(email.sent) == 5  # nothing is sent twice
    assert len(email.sent) == 5
    sends = _events(container, "users.messages.email.Send")
    deliveries = _events(container, "users.messages.email.Delivery")
    assert len(sends) == len(deliveries) == 5
    assert {e["properties"]["campaign_id"] for e in sends} == {program.id}
    text = email.sent[0].data.decode()
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in text
    assert "multipart/alternative" in text
    with container.uow(readonly=True) as uow:
        stats = services.program_stats(uow=uow, workspace_id=ws, program_id=program.id)
    assert (stats["sent"], stats["delivered"]) == (5, 5)


def test_invalid_liquid_points_at_line_and_column(container: Container) -> None:
    ws, _ = _setup(container, 1)
    bad = campaign(email={**EMAIL, "body": "<p>\n  {{ ${first_name} </p>"})
    with container.uow() as uow, pytest.raises(InvalidTemplate) as info:
        services.create_program(uow=uow, workspace_id=ws, kind="campaign", raw=bad, now=NOW)
    assert info.value.message.startswith("email.body: line 2, column 3")


def test_unknown_segment_is_refused(container: Container) -> None:
    ws, _ = _setup(container, 1)
    with container.uow() as uow, pytest.raises(InvalidProgram, match="audience"):
        services.create_program(
            uow=uow,
            workspace_id=ws,
            kind="campaign",
            raw=campaign(audience={"segment_ids": ["nope"]}),
            now=NOW,
        )


def test_api_trigger_is_idempotent_and_skips_unknown_users(container: Container) -> None:
    ws, _ = _setup(container, 3)
    email = MemoryEmailTransport()
    rt = messaging_runtime(container, email=email, webhook=MemoryWebhookTransport())
    with container.uow() as uow:
        program = services.create_program(
            uow=uow, workspace_id=ws, kind="campaign", raw=campaign(delivery={"type": "api"}), now=NOW
        )
    with container.uow() as uow:
        services.launch_program(uow=uow, workspace_id=ws, program_id=program.id, now=NOW)
    body = {"campaign_id": program.id, "recipients": [{"external_user_id": "u1"}, {"external_user_id": "zz"}]}
    with container.uow() as uow:
        first = triggers.trigger_campaign(uow=uow, workspace_id=ws, body=body, now=NOW)
    with container.uow() as uow:
        again = triggers.trigger_campaign(uow=uow, workspace_id=ws, body=body, now=NOW + 1)
    assert first["dispatch_id"] == again["dispatch_id"]
    assert first["errors"] == ["unknown user: zz"]
    rt.worker.round()
    assert [m.to for m in email.sent] == ["u1@example.com"]
    with container.uow() as uow, pytest.raises(ProgramStateConflict):
        services.launch_program(uow=uow, workspace_id=ws, program_id=program.id, now=NOW)


def test_a_messages_send_retried_across_a_dedupe_window_boundary_sends_once(container: Container) -> None:
    """An identical `/messages/send` body in the next 10-minute window (a client's retry at 12:10:01 of a call
    made at 12:09:59) returns the first dispatch and sends nothing more, as a campaign trigger does."""
    ws, _ = _setup(container, 2)
    email = MemoryEmailTransport()
    rt = messaging_runtime(container, email=email, webhook=MemoryWebhookTransport())
    body = {"messages": {"email": EMAIL}, "external_user_ids": ["u1"]}
    edge = (NOW // triggers.DEDUPE_WINDOW - 1) * triggers.DEDUPE_WINDOW  # both calls in the past
    with container.uow() as uow:
        first = triggers.send_messages(uow=uow, workspace_id=ws, body=body, now=edge - 1)
    with container.uow() as uow:
        again = triggers.send_messages(uow=uow, workspace_id=ws, body=body, now=edge + 1)
    assert first["dispatch_id"] == again["dispatch_id"]
    rt.worker.round()
    assert [m.to for m in email.sent] == ["u1@example.com"]
