"""Braze's published Web SDK in Debian's Chromium reports to a live cohorthub: a session, events,
a purchase and attributes of an anonymous device, then `changeUser`; the profile, segments,
Currents and a Heap cohort import by device_id see it all (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import httpx
from sqlalchemy import text

from cohorthub.bootstrap import Container
from cohorthub.cli.sink import Sink
from cohorthub.currents import services as currents
from cohorthub.currents.policy import RetryPolicy
from cohorthub.currents.transport import HttpSender
from cohorthub.currents.worker import DeliveryWorker
from tests.conftest import LiveServer
from tests.e2e.sdk.conftest import create_sdk_app, wait_until
from tests.integration.cohorts.factories import make_tenant
from tests.integration.currents.conftest import FakeClock, SinkServer, drive, settled


def _export(http: httpx.Client, rest_key: str, **body: Any) -> list[dict[str, Any]]:
    response = http.post("/users/export/ids", json=body, headers={"Authorization": f"Bearer {rest_key}"})
    assert response.status_code == 200, response.text
    users: list[dict[str, Any]] = response.json()["users"]
    return users


def _events(user: dict[str, Any]) -> dict[str, int]:
    return {e["name"]: e["count"] for e in user.get("custom_events", [])}


def _import_by_device(http: httpx.Client, body: dict[str, Any], cohort_id: str, device_id: str) -> int:
    named = http.post("/partners/heap/cohorts", json={**body, "cohort_id": cohort_id, "name": cohort_id,
                                                      "created_at": "2026-11-01T10:00:00Z"})  # fmt: skip
    assert named.status_code in (200, 201), named.text
    changes = [{"device_ids": [device_id]}]
    response = http.post(
        "/partners/heap/cohorts/users", json={**body, "cohort_id": cohort_id, "cohort_changes": changes}
    )
    assert response.status_code in (200, 201), response.text
    matched: int = response.json()["identifiers_matched"]
    return matched


def _segment_size(http: httpx.Client, rest_key: str, filter_: dict[str, Any]) -> int:
    auth = {"Authorization": f"Bearer {rest_key}"}
    created = http.post(
        "/segments", json={"name": json.dumps(filter_)[:200], "filter": filter_}, headers=auth
    )
    assert created.status_code == 201, created.text
    size: int = http.get(f"/segments/{created.json()['id']}/size", headers=auth).json()["size"]
    return size


def test_web_sdk_in_chromium_end_to_end(container: Container, live_server: LiveServer, page: Any) -> None:
    tenant = make_tenant(container)
    key = create_sdk_app(container, tenant.workspace_id)
    with SinkServer(Sink(token="s3cr3t")) as sink, httpx.Client(base_url=live_server.url, timeout=30) as http:
        with container.uow() as uow:
            connector = currents.create_connector(uow=uow, workspace_id=tenant.workspace_id, kind="http",
                                                  url=sink.url, token="s3cr3t", now=time.time())  # fmt: skip
        page.evaluate(
            """([key, url]) => {
                braze.initialize(key, {baseUrl: url});
                braze.openSession();
                braze.logCustomEvent("viewed_pricing", {plan: "pro"});
                braze.logCustomEvent("viewed_pricing");
                braze.logPurchase("sku-1", 9.99, "USD", 2, {gift: true});
                const user = braze.getUser();
                user.setCountry("ES");
                user.setFirstName("Ana");
                user.setCustomUserAttribute("plan", "pro");
                user.incrementCustomUserAttribute("visits", 2);
            }""",
            [key, live_server.url],
        )
        assert page.evaluate("() => flush()") is True
        device_id = page.evaluate("() => braze.getDeviceId()")

        def anonymous_profile() -> list[dict[str, Any]]:
            return _export(http, tenant.rest_key, device_id=device_id)

        wait_until(lambda: any(_events(u).get("viewed_pricing") == 2 for u in anonymous_profile()))
        [anonymous] = anonymous_profile()
        assert "external_id" not in anonymous or anonymous["external_id"] is None
        assert anonymous["country"] == "ES" and anonymous["first_name"] == "Ana"
        assert anonymous["custom_attributes"] == {"plan": "pro", "visits": 2}
        assert _import_by_device(http, tenant.body(), "heap-before", device_id) == 1

        page.evaluate('() => { braze.changeUser("user-42"); braze.logCustomEvent("signed_in"); }')
        assert page.evaluate("() => flush()") is True

        def identified() -> list[dict[str, Any]]:
            return _export(http, tenant.rest_key, external_ids=["user-42"])

        wait_until(lambda: any(_events(u).get("signed_in") for u in identified()))
        [user] = identified()
        assert user["braze_id"] == anonymous["braze_id"]  # the anonymous profile was identified
        assert user["devices"] == [{"device_id": device_id}]
        assert _events(user) == {"viewed_pricing": 2, "signed_in": 1}
        assert [p["name"] for p in user["purchases"]] == ["sku-1"]
        assert _import_by_device(http, tenant.body(), "heap-after", device_id) == 0

        with container.uow(readonly=True) as uow:
            sessions = uow.conn.execute(
                text("SELECT first, ended_at IS NOT NULL FROM sdk_sessions ORDER BY started_at")
            ).all()
        assert [tuple(bool(v) for v in row) for row in sessions] == [(True, True), (False, False)]

        assert _segment_size(http, tenant.rest_key, {"type": "event", "event": "viewed_pricing",
                                                     "op": "at_least", "count": 2}) == 1  # fmt: skip
        sessions = {"type": "sessions", "op": "at_least", "count": 2, "within_days": 1}
        assert _segment_size(http, tenant.rest_key, sessions) == 1
        assert _segment_size(http, tenant.rest_key, {**sessions, "count": 3}) == 0
        recent = {"type": "last_used_app", "op": "less_than_days_ago", "value": 1}
        assert _segment_size(http, tenant.rest_key, recent) == 1
        assert _segment_size(http, tenant.rest_key, {**recent, "op": "more_than_days_ago"}) == 0
        assert _segment_size(http, tenant.rest_key, {"type": "attribute", "attribute": "country",
                                                     "op": "equals", "value": "ES"}) == 1  # fmt: skip

        clock = FakeClock(time.time())
        worker = DeliveryWorker(
            uow=container.uow,
            sender_factory=lambda: HttpSender(timeout=5),
            policy=RetryPolicy(rng=random.Random(7)),
            now=clock.now,
        )
        drive(worker, clock, [connector.id], settled(container, connector.id, clock))
        delivered = [json.loads(raw) for raw in sink.sink.events]
    kinds = sorted(e["event_type"].rsplit(".", 1)[1] for e in delivered)
    assert kinds == ["CustomEvent"] * 3 + [
        "FirstSession",
        "Purchase",
        "SessionEnd",
        "SessionStart",
        "SessionStart",
    ]
    for event in delivered:
        props = event["properties"]
        assert event["user"]["device_id"] == device_id
        assert event["user"]["user_id"] == anonymous["braze_id"]
        assert props["platform"] == "web" and props["os_version"] and props["device_model"]
        assert props["app_id"] and props["app_group_id"] == tenant.workspace_id
    by_kind = {e["event_type"].rsplit(".", 1)[1]: e for e in delivered}
    assert by_kind["SessionEnd"]["properties"]["duration"] >= 0
    assert by_kind["Purchase"]["properties"]["price"] == 9.99
    assert by_kind["FirstSession"]["user"]["timezone"]
