"""The users API writes its Currents events to the outbox in the transaction of the change:
`users.UserDeleteRequest`, `users.behaviors.subscription.GlobalStateChange`, `users.UserOrphan`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cohorthub.bootstrap import Container
from cohorthub.identity import services
from cohorthub.workspaces import services as workspaces
from tests.integration.identity.test_users_store import NOW, Recorder, export, rows, track


@pytest.fixture
def ws(container: Container) -> str:
    with container.uow() as uow:
        workspace, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    return workspace.id


def _events(c: Container, event_type: str) -> list[dict[str, Any]]:
    query = f"SELECT payload FROM outbox WHERE event_type = '{event_type}' ORDER BY seq"
    return [json.loads(payload) for (payload,) in rows(c, query)]


def _delete(c: Container, ws: str, body: dict[str, Any]) -> int:
    with c.uow() as uow:
        return services.delete_users(
            uow=uow, workspace_id=ws, body=body, listeners=c.identity_listeners, now=NOW + 9
        )


def test_delete_records_one_delete_request_per_deleted_user(container: Container, ws: str) -> None:
    track(
        container, ws, {"attributes": [{"external_id": "u1"}, {"external_id": "u2"}, {"external_id": "u3"}]}
    )
    (u1,) = export(container, ws, {"external_ids": ["u1"]}).users
    (u2,) = export(container, ws, {"external_ids": ["u2"]}).users
    assert _delete(container, ws, {"external_ids": ["u1", "u2", "u1", "nobody"]}) == 2
    events = _events(container, "users.UserDeleteRequest")
    assert sorted(e["user"]["user_id"] for e in events) == sorted([u1["braze_id"], u2["braze_id"]])
    assert all(e["user"] == {"user_id": e["user"]["user_id"]} for e in events)
    assert all(e["properties"] == {"app_group_id": ws} and e["time"] == int(NOW + 9) for e in events)
    assert _delete(container, ws, {"external_ids": ["u1"]}) == 0  # already gone: nothing more
    assert len(_events(container, "users.UserDeleteRequest")) == 2


def test_a_delete_that_fails_records_no_delete_request(container: Container, ws: str) -> None:
    track(container, ws, {"attributes": [{"external_id": "u1"}]})

    class Failing(Recorder):
        def users_deleted(self, uow: Any, user_nums: list[int], *, workspace_id: str, now: float) -> None:
            raise RuntimeError("listener failed")

    container.identity_listeners.append(Failing())
    with pytest.raises(RuntimeError):
        _delete(container, ws, {"external_ids": ["u1"]})
    assert _events(container, "users.UserDeleteRequest") == []
    assert rows(container, "SELECT external_id FROM users") == [("u1",)]


def test_an_email_subscription_change_records_a_global_state_change(container: Container, ws: str) -> None:
    track(
        container, ws, {"attributes": [{"external_id": "u1", "email": "a@x.io", "time_zone": "Europe/Paris"}]}
    )
    assert _events(container, "users.behaviors.subscription.GlobalStateChange") == []
    track(container, ws, {"attributes": [{"external_id": "u1", "email_subscribe": "unsubscribed"}]})
    track(
        container, ws, {"attributes": [{"external_id": "u1", "email_subscribe": "unsubscribed"}]}
    )  # no change
    track(container, ws, {"attributes": [{"external_id": "u1", "first_name": "Ana"}]})  # not about it
    track(container, ws, {"attributes": [{"external_id": "u1", "email_subscribe": "opted_in"}]})
    track(container, ws, {"attributes": [{"external_id": "u2", "email_subscribe": "subscribed"}]})  # new user
    events = _events(container, "users.behaviors.subscription.GlobalStateChange")
    assert [(e["user"]["external_user_id"], e["properties"]["subscription_status"]) for e in events] == [
        ("u1", "Unsubscribed"),
        ("u1", "Opted In"),
        ("u2", "Subscribed"),
    ]
    assert events[0]["user"]["timezone"] == "Europe/Paris"
    assert events[0]["properties"] == {
        "app_group_id": ws,
        "channel": "email",
        "channel_identifier": "a@x.io",
        "email_address": "a@x.io",
        "state_change_source": "REST API",
        "subscription_status": "Unsubscribed",
    }
    assert "email_address" not in events[2]["properties"]  # u2 has no e-mail address


def test_an_invalid_email_subscribe_records_nothing(container: Container, ws: str) -> None:
    track(container, ws, {"attributes": [{"external_id": "u1"}]})
    body = {"attributes": [{"external_id": "u1", "email_subscribe": "maybe"}, {"external_id": "u1", "n": 1}]}
    assert track(container, ws, body).errors
    assert _events(container, "users.behaviors.subscription.GlobalStateChange") == []


def test_user_orphan_carries_the_device_id_of_the_merged_profile(container: Container, ws: str) -> None:
    # signing in on a device merges that device's anonymous profile
    track(container, ws, {"attributes": [{"device_id": "d1", "first_name": "Anon"}, {"external_id": "u1"}]})
    (anon,) = export(container, ws, {"device_id": "d1"}).users
    track(container, ws, {"attributes": [{"external_id": "u1", "device_id": "d1"}]})
    # identifying an anonymous profile by its e-mail merges it with the devices it owns
    track(container, ws, {"attributes": [{"device_id": "d2"}, {"external_id": "u2"}]})
    (other,) = export(container, ws, {"device_id": "d2"}).users
    track(container, ws, {"attributes": [{"braze_id": other["braze_id"], "email": "b@x.io"}]})
    with container.uow() as uow:
        services.identify_users(
            uow=uow,
            workspace_id=ws,
            body={
                "emails_to_identify": [
                    {"external_id": "u2", "email": "b@x.io", "prioritization": ["unidentified"]}
                ]
            },
            listeners=container.identity_listeners,
            now=NOW + 1,
        )
    orphans = _events(container, "users.UserOrphan")
    assert [e["user"] for e in orphans] == [
        {"user_id": anon["braze_id"], "device_id": "d1"},
        {"user_id": other["braze_id"], "device_id": "d2"},
    ]
