"""SDK data through the use case on both stores: merges move sessions, deletes remove them, retries
within the window are stored once and after it again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from cohorthub.apps import services as apps
from cohorthub.apps.model import App
from cohorthub.bootstrap import Container
from cohorthub.identity import services as identity
from cohorthub.workspaces import services as workspaces

NOW = 1_800_000_000.0
DEVICE = "device-1"


def _app(c: Container) -> App:
    with c.uow() as uow:
        ws, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    with c.uow() as uow:
        app, _ = apps.create_app(uow=uow, workspace_id=ws.id, name="web", now=NOW)
    return app


def _send(c: Container, app: App, *events: dict[str, Any], now: float = NOW) -> apps.SdkOutcome:
    body = {"api_key": "k", "device_id": DEVICE, "events": list(events),
            "device": {"browser": "Chrome", "os_version": "Linux", "time_zone": "Europe/Madrid"}}  # fmt: skip
    with c.uow() as uow:
        return apps.record_sdk_data(
            uow=uow, app=app, body=body, listeners=c.identity_listeners, dedup_window=3600.0, now=now
        )


def _sessions(c: Container) -> list[tuple[int, str, bool]]:
    with c.uow(readonly=True) as uow:
        rows = uow.conn.execute(
            text("SELECT user_num, session_id, first FROM sdk_sessions ORDER BY started_at")
        )
        return [(int(n), s, bool(f)) for n, s, f in rows]


def _outbox_types(c: Container) -> list[str]:
    with c.uow(readonly=True) as uow:
        return [
            t.rsplit(".", 1)[1]
            for (t,) in uow.conn.execute(text("SELECT event_type FROM outbox ORDER BY seq"))
        ]


def test_change_user_to_a_known_user_merges_the_device_and_its_sessions(container: Container) -> None:
    app = _app(container)
    known = {"attributes": [{"external_id": "u1"}]}
    with container.uow() as uow:
        identity.track_users(
            uow=uow,
            workspace_id=app.workspace_id,
            body=known,
            listeners=container.identity_listeners,
            now=NOW,
        )
    _send(container, app, {"name": "ss", "time": NOW - 60, "session_id": "s1"})
    [(anonymous, _, first)] = _sessions(container)
    assert first is True
    outcome = _send(
        container,
        app,
        {"name": "se", "time": NOW - 1, "session_id": "s1", "data": {"d": 59}},
        {"name": "ss", "time": NOW, "session_id": "s2", "user_id": "u1"},
    )
    assert outcome.stored == 2
    rows = _sessions(container)
    assert {n for n, _, _ in rows} != {anonymous} and len({n for n, _, _ in rows}) == 1
    assert [(s, f) for _, s, f in rows] == [("s1", True), ("s2", False)]
    assert _outbox_types(container) == [
        "SessionStart",
        "FirstSession",
        "UserOrphan",
        "SessionEnd",
        "SessionStart",
    ]
    with container.uow() as uow:
        assert identity.delete_users(uow=uow, workspace_id=app.workspace_id, body={"external_ids": ["u1"]},
                                     listeners=container.identity_listeners, now=NOW) == 1  # fmt: skip
    assert _sessions(container) == []


def test_a_retry_within_the_window_is_stored_once_and_after_it_again(container: Container) -> None:
    app = _app(container)
    event = {"name": "ce", "time": NOW - 5, "session_id": "s1", "data": {"n": "played", "p": {"level": 2}}}
    assert _send(container, app, event, event).stored == 1  # a repeat inside one request, too
    again = _send(container, app, event, now=NOW + 60)
    assert (again.stored, again.duplicates) == (0, 1)
    other = {**event, "data": {"n": "played", "p": {"level": 3}}}
    assert _send(container, app, other, now=NOW + 61).stored == 1
    assert _send(container, app, event, now=NOW + 3601 + 60).stored == 1  # the window has passed
    with container.uow(readonly=True) as uow:
        assert uow.conn.execute(text("SELECT count(*) FROM custom_events")).scalar_one() == 3
        assert uow.conn.execute(text("SELECT count(*) FROM sdk_seen")).scalar_one() == 2
