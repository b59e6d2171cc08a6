"""Braze's messaging calls over HTTP: the unchanged braze-client campaign call, response shapes,
errors that change nothing, retries that send nothing twice, exports, and webhooks."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from braze.client import BrazeClient, BrazeClientError

from cohorthub.bootstrap import Container
from cohorthub.messaging.channels.smtp import SmtpConfig, SmtpTransport
from cohorthub.messaging.ports import MemoryEmailTransport, MemoryWebhookTransport
from cohorthub.runtimes import messaging_runtime
from cohorthub.workspaces import services as workspaces
from tests.conftest import LiveServer
from tests.e2e.messaging.conftest import SmtpSink

EMAIL = {
    "from": "Shop <news@shop.test>",
    "subject": "Your code {{api_trigger_properties.${coupon} | default: 'NONE'}}",
    "body": "<p>Hello {{${first_name} | default: 'there'}}</p>",
}


def _setup(c: Container, http: httpx.Client) -> tuple[str, dict[str, str]]:
    with c.uow() as uow:
        _, key = workspaces.create_workspace(uow=uow, name="Acme", now=time.time())
    auth = {"Authorization": f"Bearer {key.key}"}
    users = [{"external_id": f"u{i}", "email": f"u{i}@example.com", "first_name": f"N{i}"} for i in range(3)]
    assert http.post("/users/track", json={"attributes": users}, headers=auth).status_code == 201
    return key.key, auth


def _campaign(http: httpx.Client, auth: dict[str, str], **extra: Any) -> str:
    body = {"name": "Coupon", "channel": "email", "email": EMAIL, "delivery": {"type": "api"}, **extra}
    created = http.post("/messaging/campaigns", json=body, headers=auth)
    assert created.status_code == 201, created.text
    cid: str = created.json()["id"]
    assert http.post(f"/messaging/campaigns/{cid}/launch", headers=auth).status_code == 200
    return cid


def test_braze_client_campaign_call_sends_once_through_smtp(
    container: Container, live_server: LiveServer, smtp: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp
    runtime = messaging_runtime(
        container, email=SmtpTransport(SmtpConfig(port=port)), webhook=MemoryWebhookTransport()
    )
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        key, auth = _setup(container, http)
        cid = _campaign(http, auth)
        client = BrazeClient(api_key=key, api_url=live_server.url)
        answer = client.campaign_trigger_send(cid, recipients=[{"external_user_id": "u1"}])
        assert answer["success"] is True and answer["message"] == "success"
        again = client.campaign_trigger_send(cid, recipients=[{"external_user_id": "u1"}])  # a client retry
        assert again["message"] == "success"
        runtime.worker.round()
        runtime.worker.round()
        assert sink.to() == ["u1@example.com"]
        assert sink.received[0][1]["Subject"] == "Your code NONE"
        with pytest.raises(BrazeClientError, match="Invalid Campaign ID"):
            client.campaign_trigger_send("nope", recipients=[{"external_user_id": "u1"}])
    runtime.channels.email.close()


def test_trigger_shapes_errors_and_exports(container: Container, live_server: LiveServer) -> None:
    hooks = MemoryWebhookTransport()
    memory = MemoryEmailTransport()
    runtime = messaging_runtime(container, email=memory, webhook=hooks)
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        _, auth = _setup(container, http)
        cid = _campaign(http, auth)
        send = "/campaigns/trigger/send"
        body = {"campaign_id": cid, "trigger_properties": {"coupon": "X1"},
                "recipients": [{"external_user_id": "u0", "trigger_properties": {"coupon": "Y2"}},
                               {"external_user_id": "u0"}, {"external_user_id": "ghost"}]}  # fmt: skip
        ok = http.post(send, json=body, headers=auth)
        assert ok.status_code == 201
        assert set(ok.json()) == {"dispatch_id", "message", "errors"} and ok.json()["message"] == "success"
        keyed = {**auth, "Idempotency-Key": "k-1"}
        first = http.post(send, json={"campaign_id": cid, "broadcast": True}, headers=keyed).json()
        assert http.post(send, json={"campaign_id": cid, "broadcast": True}, headers=keyed).json() == first
        for bad, status, message in [
            ({"campaign_id": "nope", "broadcast": True}, 400, "Invalid Campaign ID"),
            ({"campaign_id": cid}, 400, "No Recipients"),
            ({"campaign_id": cid, "broadcast": True, "recipients": [{"external_user_id": "u1"}]}, 400,
             "Bad Request"),
            ({"campaign_id": cid, "recipients": [{"external_user_id": str(i)} for i in range(51)]}, 400,
             "The max number of external_ids and aliases per request was exceeded"),
        ]:  # fmt: skip
            answer = http.post(send, json=bad, headers=auth)
            assert (answer.status_code, answer.json()["message"]) == (status, message)
        assert http.post(send, content=b"{}", headers=auth).status_code == 415
        runtime.worker.round()
        runtime.worker.round()
        subjects = sorted((m.to, m.data.decode().split("Subject: ")[1].split("\r\n")[0]) for m in memory.sent)
        none = "Your code NONE"
        assert subjects == [("u0@example.com", none), ("u0@example.com", "Your code Y2"),
                            ("u1@example.com", none), ("u2@example.com", none)]  # fmt: skip
        listed = http.get("/campaigns/list", headers=auth).json()
        assert listed == {"message": "success", "campaigns": [
            {"id": cid, "last_edited": listed["campaigns"][0]["last_edited"], "name": "Coupon", "tags": [],
             "is_api_campaign": True}]}  # fmt: skip
        details = http.get("/campaigns/details", params={"campaign_id": cid}, headers=auth).json()
        assert details["channels"] == ["email"] and details["enabled"] is True
        assert http.get("/campaigns/details", params={"campaign_id": "x"}, headers=auth).status_code == 404
        created = http.post("/sends/id/create", json={"campaign_id": cid, "send_id": "spring"}, headers=auth)
        assert created.json() == {"message": "success", "send_id": "spring"}
        hook = {"messages": {"webhook": {"url": "https://hooks.test/{{${user_id}}}", "request_method": "POST",
                                         "body": '{"name": "{{${first_name}}}"}'}},
                "external_user_ids": ["u2"]}  # fmt: skip
        sent = http.post("/messages/send", json=hook, headers=auth)
        assert sent.status_code == 201, sent.text
        runtime.worker.round()
        assert [(h.url, h.body) for h in hooks.sent] == [("https://hooks.test/u2", b'{"name": "N2"}')]
