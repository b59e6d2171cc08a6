"""`/users/delete` by email address and phone number, on both stores."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from cohorthub.bootstrap import Container
from cohorthub.identity import services
from cohorthub.identity.errors import InvalidUserRequest
from cohorthub.identity.listeners import Merge
from cohorthub.workspaces import services as workspaces

NOW = 1_800_000_000.0


class Recorder:
    """An identity listener that notes the deleted users and how many of their rows it could still see."""

    def __init__(self) -> None:
        self.deleted: list[int] = []
        self.rows_seen: int | None = None

    def users_leaving(self, uow: Any, user_nums: list[int], *, workspace_id: str) -> None:
        """Nothing to lock."""

    def users_merged(self, uow: Any, merges: list[Merge], *, workspace_id: str, now: float) -> None:
        """Not used here."""

    def users_deleted(self, uow: Any, user_nums: list[int], *, workspace_id: str, now: float) -> None:
        self.deleted.extend(user_nums)
        query = text(f"SELECT count(*) FROM users WHERE num IN ({','.join(map(str, user_nums))})")
        self.rows_seen = uow.conn.execute(query).scalar_one()


@pytest.fixture
def ws(container: Container) -> str:
    with container.uow() as uow:
        workspace, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    return workspace.id


def track(c: Container, ws: str, attributes: list[dict[str, Any]], now: float = NOW) -> None:
    with c.uow() as uow:
        services.track_users(uow=uow, workspace_id=ws, body={"attributes": attributes}, now=now)


def delete(c: Container, ws: str, body: dict[str, Any]) -> int:
    with c.uow() as uow:
        return services.delete_users(
            uow=uow, workspace_id=ws, body=body, listeners=c.identity_listeners, now=NOW + 100
        )


def rows(c: Container, sql: str) -> list[tuple[Any, ...]]:
    with c.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def remaining(c: Container) -> list[str]:
    """Each remaining user as its external id, or its device id when anonymous."""
    query = (
        "SELECT coalesce(u.external_id, d.device_id) FROM users u "
        "LEFT JOIN user_devices d ON d.user_num = u.num ORDER BY 1"
    )
    return [r[0] for r in rows(c, query)]


def test_an_email_deletes_its_user_case_insensitively(container: Container, ws: str) -> None:
    recorder = Recorder()
    container.identity_listeners.append(recorder)
    track(
        container, ws, [{"external_id": "u1", "email": "Ann@X.io"}, {"external_id": "u2", "email": "b@x.io"}]
    )
    assert rows(container, "SELECT email FROM users WHERE external_id = 'u1'") == [("ann@x.io",)]
    [(u1,)] = rows(container, "SELECT num FROM users WHERE external_id = 'u1'")

    assert delete(container, ws, {"email_addresses": [" ANN@x.IO"], "external_ids": ["u1"]}) == 1
    assert recorder.deleted == [u1]
    assert recorder.rows_seen == 0
    assert remaining(container) == ["u2"]


def test_a_phone_number_deletes_its_user_and_what_it_owns(container: Container, ws: str) -> None:
    track(
        container,
        ws,
        [
            {"external_id": "u1", "phone": "+15551234", "device_id": "d1"},
            {"external_id": "u2", "phone": "+1999"},
        ],
    )
    assert delete(container, ws, {"phone_numbers": ["+15551234", "+10000"]}) == 1
    assert remaining(container) == ["u2"]
    assert rows(container, "SELECT count(*) FROM user_devices") == [(0,)]


def test_a_shared_email_follows_prioritization(container: Container, ws: str) -> None:
    shared = "shared@x.io"
    track(container, ws, [{"external_id": "u1", "email": shared}], now=NOW)
    track(container, ws, [{"device_id": "old"}], now=NOW + 10)
    track(container, ws, [{"device_id": "new"}], now=NOW + 20)
    with container.engine.begin() as conn:  # the anonymous profiles share the email too
        conn.execute(text("UPDATE users SET email = :e WHERE external_id IS NULL"), {"e": shared})

    # Three users have it: without prioritization, or with one that leaves several, no one goes.
    assert delete(container, ws, {"email_addresses": [shared]}) == 0
    assert (
        delete(container, ws, {"email_addresses": [{"email": shared, "prioritization": ["unidentified"]}]})
        == 0
    )
    assert remaining(container) == ["new", "old", "u1"]

    pick_old = {"email": shared.upper(), "prioritization": ["unidentified", "least_recently_updated"]}
    assert delete(container, ws, {"email_addresses": [pick_old]}) == 1
    assert remaining(container) == ["new", "u1"]
    assert (
        delete(container, ws, {"email_addresses": [{"email": shared, "prioritization": ["identified"]}]}) == 1
    )
    assert remaining(container) == ["new"]
    assert delete(container, ws, {"email_addresses": [shared]}) == 1  # the only one left
    assert remaining(container) == []


def test_a_shared_phone_follows_prioritization(container: Container, ws: str) -> None:
    track(container, ws, [{"external_id": "u1", "phone": "+1555"}], now=NOW)
    track(container, ws, [{"external_id": "u2", "phone": "+1555"}], now=NOW + 10)
    assert delete(container, ws, {"phone_numbers": ["+1555"]}) == 0
    most_recent = {"phone": "+1555", "prioritization": ["most_recently_updated"]}
    assert delete(container, ws, {"phone_numbers": [most_recent]}) == 1
    assert remaining(container) == ["u1"]


def test_a_bad_identifier_deletes_nothing(container: Container, ws: str) -> None:
    track(container, ws, [{"external_id": "u1", "email": "a@x.io"}])
    with pytest.raises(InvalidUserRequest, match=r"email_addresses\[1\]: email is not an email address"):
        delete(container, ws, {"external_ids": ["u1"], "email_addresses": ["a@x.io", "nope"]})
    with pytest.raises(InvalidUserRequest, match="Too many identifiers: 51 given"):
        delete(container, ws, {"external_ids": ["u1"] * 25, "phone_numbers": ["+1"] * 26})
    assert remaining(container) == ["u1"]
