"""Braze's schedule calls over HTTP: `/campaigns/trigger/schedule/{create,update,delete}` and the Canvas
twins. A scheduled call is a dispatch due at its time (its `schedule_id` is the dispatch id): nothing
leaves before, it can be moved or cancelled until it is sent, and errors change nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from cohorthub.bootstrap import Container
from cohorthub.messaging.ports import MemoryEmailTransport, MemoryWebhookTransport
from cohorthub.runtimes import Messaging, messaging_runtime
from cohorthub.workspaces import services as workspaces
from tests.conftest import LiveServer

EMAIL = {"from": "news@shop.test", "subject": "Code {{api_trigger_properties.${c}}}", "body": "<p>x</p>"}


class Clock:
    """The server's clock, set by the test."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _world(container: Container, n: int) -> tuple[Clock, MemoryEmailTransport, Messaging, str]:
    """A clock the test sets, an in-memory SMTP, a messaging runtime and a workspace's key."""
    clock = Clock()
    container.now = clock
    memory = MemoryEmailTransport()
    runtime = messaging_runtime(container, email=memory, webhook=MemoryWebhookTransport())
    with container.uow() as uow:
        _, key = workspaces.create_workspace(uow=uow, name="Acme", now=clock())
    return clock, memory, runtime, key.key


@contextmanager
def _client(live_server: LiveServer, key: str, n: int) -> Iterator[httpx.Client]:
    """A client with the key, after `n` users u0… with addresses were created."""
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {key}"}) as http:
        users = [{"external_id": f"u{i}", "email": f"u{i}@example.com"} for i in range(n)]
        assert http.post("/users/track", json={"attributes": users}).status_code == 201
        yield http


def test_scheduled_campaign_calls_are_sent_at_their_time_moved_or_cancelled(
    container: Container, live_server: LiveServer
) -> None:
    clock, memory, runtime, key = _world(container, 3)
    with _client(live_server, key, 3) as http:
        body = {"name": "C", "channel": "email", "email": EMAIL, "delivery": {"type": "api"}}
        cid = http.post("/messaging/campaigns", json=body).json()["id"]
        assert http.post(f"/messaging/campaigns/{cid}/launch").status_code == 200

        def create(recipient: str, at: float, **extra: Any) -> httpx.Response:
            call = {"campaign_id": cid, "recipients": [{"external_user_id": recipient}],
                    "trigger_properties": {"c": recipient}, "schedule": {"time": _iso(at)}}  # fmt: skip
            call.update(extra)
            return http.post("/campaigns/trigger/schedule/create", json=call)

        first = create("u0", clock() + 3600)
        assert first.status_code == 201, first.text
        answer = first.json()
        assert answer["message"] == "success" and answer["schedule_id"] == answer["dispatch_id"]
        moved = create("u1", clock() + 3600).json()["schedule_id"]
        cancelled = create("u2", clock() + 3600).json()["schedule_id"]
        for bad in (
            create("u0", clock() - 60),  # in the past
            create("u0", clock() + 60, schedule={"time": "soon"}),
            create("u0", clock() + 60, schedule={"time": _iso(clock() + 60), "in_local_time": True}),
            http.post("/campaigns/trigger/schedule/create", json={"campaign_id": cid, "broadcast": True}),
        ):
            assert bad.status_code == 400 and bad.json()["message"] == "Bad Request", bad.text
        change = "/campaigns/trigger/schedule/update"
        later = {"time": _iso(clock() + 7200)}
        assert http.post(
            change, json={"campaign_id": cid, "schedule_id": moved, "schedule": later}
        ).json() == {"message": "success"}
        gone = http.post(
            "/campaigns/trigger/schedule/delete", json={"campaign_id": cid, "schedule_id": cancelled}
        )
        assert gone.status_code == 201
        again = http.post(
            "/campaigns/trigger/schedule/delete", json={"campaign_id": cid, "schedule_id": cancelled}
        )
        assert again.status_code == 404
        unknown = http.post(change, json={"campaign_id": cid, "schedule_id": "nope", "schedule": later})
        assert unknown.status_code == 404

        runtime.worker.round()
        assert memory.sent == []  # nothing is due yet
        clock.t += 3601
        runtime.worker.round()
        assert [m.to for m in memory.sent] == ["u0@example.com"]
        sent = http.post(
            change, json={"campaign_id": cid, "schedule_id": answer["schedule_id"], "schedule": later}
        )
        assert sent.status_code == 404  # sent already: nothing to move
        clock.t += 3600
        runtime.worker.round()
        assert [m.to for m in memory.sent] == ["u0@example.com", "u1@example.com"]  # u2's was cancelled
        assert b"Code u1" in memory.sent[1].data


def test_a_scheduled_canvas_call_enters_its_recipients_at_its_time(
    container: Container, live_server: LiveServer
) -> None:
    clock, memory, runtime, key = _world(container, 2)
    with _client(live_server, key, 2) as http:
        mail = {**EMAIL, "subject": "Hi {{canvas_entry_properties.${who}}}"}
        canvas = {"name": "K", "entry": {"type": "api"},
                  "steps": [{"id": "m", "type": "message", "channel": "email", "email": mail}]}  # fmt: skip
        kid = http.post("/messaging/canvases", json=canvas).json()["id"]
        call = {"canvas_id": kid, "context": {"who": "all"}, "schedule": {"time": _iso(clock() + 600)},
                "recipients": [{"external_user_id": "u1", "context": {"who": "one"}}]}  # fmt: skip
        draft = http.post("/canvas/trigger/schedule/create", json=call)
        assert draft.status_code == 400 and draft.json()["message"] == "Invalid Canvas ID"
        assert http.post(f"/messaging/canvases/{kid}/launch").status_code == 200
        created = http.post("/canvas/trigger/schedule/create", json=call)
        assert created.status_code == 201, created.text
        runtime.worker.round()
        assert memory.sent == []
        clock.t += 601
        for _ in range(3):
            runtime.worker.round()
        assert [(m.to, b"Hi one" in m.data) for m in memory.sent] == [("u1@example.com", True)]
