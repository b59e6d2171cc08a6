"""Identity use cases on both stores: track, sign-in merges, identify, aliases, delete, export."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import text

from cohorthub.bootstrap import Container
from cohorthub.identity import services
from cohorthub.identity.errors import InvalidUserRequest
from cohorthub.identity.listeners import Merge
from cohorthub.workspaces import services as workspaces

NOW = 1_800_000_000.0
T1 = "2027-01-01T00:00:00Z"


class Recorder:
    """An identity listener that notes what it was told and what it could see at that moment."""

    def __init__(self, *, fail: bool = False) -> None:
        self.merged: list[Merge] = []
        self.deleted: list[int] = []
        self.fail = fail
        self.rows_seen: int | None = None

    def users_leaving(self, uow: Any, user_nums: list[int], *, workspace_id: str) -> None:
        """Nothing to lock."""

    def users_merged(self, uow: Any, merges: list[Merge], *, workspace_id: str, now: float) -> None:
        self.merged.extend(merges)
        if self.fail:
            raise RuntimeError("listener failed")

    def users_deleted(self, uow: Any, user_nums: list[int], *, workspace_id: str, now: float) -> None:
        self.deleted.extend(user_nums)
        query = text(f"SELECT count(*) FROM users WHERE num IN ({','.join(map(str, user_nums))})")
        self.rows_seen = uow.conn.execute(query).scalar_one()


@pytest.fixture
def ws(container: Container) -> str:
    with container.uow() as uow:
        workspace, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    return workspace.id


def track(c: Container, ws: str, body: dict[str, Any], now: float = NOW) -> services.TrackResult:
    with c.uow() as uow:
        return services.track_users(
            uow=uow, workspace_id=ws, body=body, listeners=c.identity_listeners, now=now
        )


def export(c: Container, ws: str, body: dict[str, Any]) -> services.ExportResult:
    with c.uow(readonly=True) as uow:
        return services.export_users(uow=uow, workspace_id=ws, body=body)


def rows(c: Container, sql: str) -> list[tuple[Any, ...]]:
    with c.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_track_stores_attributes_events_purchases_and_outbox(container: Container, ws: str) -> None:
    result = track(
        container,
        ws,
        {
            "attributes": [{"external_id": "u1", "first_name": "Ana", "plan": "pro", "visits": {"inc": 2}}],
            "events": [{"external_id": "u1", "name": "played", "time": T1, "properties": {"song": "é"}}],
            "purchases": [
                {"external_id": "u1", "product_id": "sku", "currency": "eur", "price": 9.5, "time": T1}
            ],
        },
    )
    assert (result.attributes_processed, result.events_processed, result.purchases_processed) == (1, 1, 1)
    user = export(container, ws, {"external_ids": ["u1"]}).users[0]
    assert user["first_name"] == "Ana"
    assert user["custom_attributes"] == {"plan": "pro", "visits": 2}
    assert user["custom_events"] == [
        {
            "name": "played",
            "first": "2027-01-01T00:00:00.000Z",
            "last": "2027-01-01T00:00:00.000Z",
            "count": 1,
        }
    ]
    assert user["purchases"][0]["name"] == "sku"
    assert rows(container, "SELECT currency, price FROM purchases") == [("EUR", 9.5)]
    assert rows(container, "SELECT updated_at FROM users") == [(NOW,)]
    outbox = rows(container, "SELECT event_type, payload FROM outbox ORDER BY seq")
    assert [t for t, _ in outbox] == ["users.behaviors.CustomEvent", "users.behaviors.Purchase"]
    event = json.loads(outbox[0][1])
    assert event["user"] == {"user_id": user["braze_id"], "external_user_id": "u1"}
    assert event["properties"]["custom_properties"] == {"song": "é"}


def test_every_change_moves_updated_at(container: Container, ws: str) -> None:
    track(container, ws, {"attributes": [{"external_id": "u1", "n": 1}]})
    track(container, ws, {"events": [{"external_id": "u1", "name": "e", "time": T1}]}, now=NOW + 10)
    assert rows(container, "SELECT created_at, updated_at FROM users") == [(NOW, NOW + 10)]


def test_sign_in_merges_the_anonymous_device_profile(container: Container, ws: str) -> None:
    recorder = Recorder()
    container.identity_listeners.append(recorder)
    track(
        container,
        ws,
        {
            "attributes": [{"device_id": "d1", "first_name": "Anon", "color": "red"}],
            "events": [{"device_id": "d1", "name": "opened", "time": T1}],
            "purchases": [{"device_id": "d1", "product_id": "p", "currency": "USD", "price": 1, "time": T1}],
        },
    )
    track(container, ws, {"attributes": [{"external_id": "u1", "first_name": "Known"}]})
    (anon,) = export(container, ws, {"device_id": "d1"}).users
    (known,) = export(container, ws, {"external_ids": ["u1"]}).users
    nums = dict(rows(container, "SELECT braze_id, num FROM users"))
    track(container, ws, {"attributes": [{"external_id": "u1", "device_id": "d1"}]}, now=NOW + 5)
    (merged,) = export(container, ws, {"external_ids": ["u1"]}).users
    assert merged["braze_id"] == known["braze_id"]
    assert merged["first_name"] == "Known"  # the identified user's own value wins
    assert merged["custom_attributes"] == {"color": "red"}  # found only on the anonymous profile
    assert merged["devices"] == [{"device_id": "d1"}]
    assert [e["name"] for e in merged["custom_events"]] == ["opened"]
    assert [p["name"] for p in merged["purchases"]] == ["p"]
    assert export(container, ws, {"braze_id": anon["braze_id"]}).users == []
    nums = dict(rows(container, "SELECT braze_id, num FROM users"))
    assert recorder.merged == [
        Merge(nums.get(anon["braze_id"], recorder.merged[0].orphan_num), nums[known["braze_id"]])
    ]
    assert rows(
        container,
        "SELECT count(*) FROM user_devices d JOIN users u ON u.num = d.user_num WHERE u.external_id IS NULL",
    ) == [(0,)]
    orphan_events = rows(container, "SELECT payload FROM outbox WHERE event_type = 'users.UserOrphan'")
    payload = json.loads(orphan_events[0][0])
    assert payload["user"]["user_id"] == anon["braze_id"]
    assert payload["properties"]["orphaned_by_id"] == known["braze_id"]


def test_a_failing_listener_rolls_the_merge_back(container: Container, ws: str) -> None:
    container.identity_listeners.append(Recorder(fail=True))
    track(container, ws, {"attributes": [{"device_id": "d1", "a": 1}, {"external_id": "u1"}]})
    before = rows(container, "SELECT num, external_id FROM users ORDER BY num")
    with pytest.raises(RuntimeError, match="listener failed"):
        track(container, ws, {"attributes": [{"external_id": "u1", "device_id": "d1"}]})
    assert rows(container, "SELECT num, external_id FROM users ORDER BY num") == before
    assert rows(container, "SELECT count(*) FROM outbox WHERE event_type = 'users.UserOrphan'") == [(0,)]


def test_sign_in_with_a_new_external_id_promotes_the_device_profile(container: Container, ws: str) -> None:
    track(container, ws, {"attributes": [{"device_id": "d1", "first_name": "Anon"}]})
    (anon,) = export(container, ws, {"device_id": "d1"}).users
    track(container, ws, {"events": [{"external_id": "u9", "device_id": "d1", "name": "login", "time": T1}]})
    (user,) = export(container, ws, {"external_ids": ["u9"]}).users
    assert user["braze_id"] == anon["braze_id"]
    assert user["first_name"] == "Anon"
    event = json.loads(
        rows(container, "SELECT payload FROM outbox WHERE event_type LIKE '%CustomEvent'")[0][0]
    )
    assert event["user"] == {"user_id": anon["braze_id"], "external_user_id": "u9", "device_id": "d1"}


def test_update_existing_only(container: Container, ws: str) -> None:
    alias = {"alias_name": "example_name", "alias_label": "example_label"}
    result = track(container, ws, {"attributes": [{"user_alias": alias, "a": 1}]})
    assert result.attributes_processed == 0
    assert "set _update_existing_only to false" in result.errors[0].type
    assert rows(container, "SELECT count(*) FROM users") == [(0,)]
    result = track(
        container, ws, {"attributes": [{"user_alias": alias, "_update_existing_only": False, "a": 1}]}
    )
    assert result.attributes_processed == 1
    result = track(container, ws, {"attributes": [{"external_id": "nobody", "_update_existing_only": True}]})
    assert result.attributes_processed == 0
    assert rows(container, "SELECT count(*) FROM users") == [(1,)]


def test_identify_promotes_merges_and_keeps_aliases(container: Container, ws: str) -> None:
    recorder = Recorder()
    container.identity_listeners.append(recorder)
    new = [
        {"alias_name": n, "alias_label": lbl} for n, lbl in (("a1", "heap"), ("a2", "heap"), ("a3", "amp"))
    ]
    with container.uow() as uow:
        services.add_aliases(uow=uow, workspace_id=ws, body={"user_aliases": new}, now=NOW)
    track(container, ws, {"attributes": [{"external_id": "known"}]})

    def identify(body: dict[str, Any]) -> services.IdentifyResult:
        with container.uow() as uow:
            return services.identify_users(
                uow=uow, workspace_id=ws, body=body, listeners=container.identity_listeners, now=NOW
            )

    def alias(name: str, label: str) -> dict[str, Any]:
        return {"alias_name": name, "alias_label": label}

    # a new external id: the alias-only profile becomes identified
    assert (
        identify(
            {"aliases_to_identify": [{"external_id": "fresh", "user_alias": alias("a1", "heap")}]}
        ).aliases_processed
        == 1
    )
    # an existing external id: merged in
    assert (
        identify(
            {"aliases_to_identify": [{"external_id": "known", "user_alias": alias("a3", "amp")}]}
        ).aliases_processed
        == 1
    )
    # known now holds an "amp" alias; a2 (heap) can merge, then another heap alias cannot
    assert (
        identify(
            {"aliases_to_identify": [{"external_id": "known", "user_alias": alias("a2", "heap")}]}
        ).aliases_processed
        == 1
    )
    assert len(recorder.merged) == 2
    (fresh,) = export(container, ws, {"external_ids": ["fresh"]}).users
    assert fresh["user_aliases"] == [alias("a1", "heap")]
    (known,) = export(container, ws, {"user_aliases": [alias("a3", "amp")]}).users
    assert known["external_id"] == "known"
    assert sorted(a["alias_name"] for a in known["user_aliases"]) == ["a2", "a3"]
    with container.uow() as uow:
        services.add_aliases(uow=uow, workspace_id=ws, body={"user_aliases": [alias("a4", "heap")]}, now=NOW)
    assert (
        identify(
            {"aliases_to_identify": [{"external_id": "known", "user_alias": alias("a4", "heap")}]}
        ).aliases_processed
        == 0
    )
    assert export(container, ws, {"user_aliases": [alias("a4", "heap")]}).users[0].get("external_id") is None


def test_identify_by_email_with_prioritization(container: Container, ws: str) -> None:
    track(container, ws, {"attributes": [{"email": "a@x.io", "n": 1}]})
    track(container, ws, {"attributes": [{"external_id": "u1"}]})
    with container.uow() as uow:
        result = services.identify_users(
            uow=uow,
            workspace_id=ws,
            body={
                "emails_to_identify": [
                    {
                        "external_id": "u1",
                        "email": "A@x.io",
                        "prioritization": ["unidentified", "most_recently_updated"],
                    }
                ]
            },
            now=NOW + 1,
        )
    assert result.emails_processed == 1
    (user,) = export(container, ws, {"email_address": "a@x.io"}).users
    assert (user["external_id"], user["custom_attributes"]) == ("u1", {"n": 1})


def test_alias_new_adds_renames_and_refuses_taken_aliases(container: Container, ws: str) -> None:
    track(container, ws, {"attributes": [{"external_id": "u1"}, {"external_id": "u2"}]})

    def add(*aliases: dict[str, Any]) -> services.AliasResult:
        with container.uow() as uow:
            return services.add_aliases(
                uow=uow, workspace_id=ws, body={"user_aliases": list(aliases)}, now=NOW
            )

    assert add({"external_id": "u1", "alias_name": "old", "alias_label": "crm"}).aliases_processed == 1
    assert add({"external_id": "u1", "alias_name": "new", "alias_label": "crm"}).aliases_processed == 1
    result = add(
        {"external_id": "u2", "alias_name": "new", "alias_label": "crm"},
        {"external_id": "ghost", "alias_name": "x", "alias_label": "crm"},
    )
    assert result.aliases_processed == 0
    assert result.errors == [
        "user_aliases[0]: the alias already belongs to another user",
        "user_aliases[1]: no user with external_id 'ghost'",
    ]
    (u1,) = export(container, ws, {"external_ids": ["u1"]}).users
    assert u1["user_aliases"] == [{"alias_name": "new", "alias_label": "crm"}]


def test_delete_tells_listeners_after_rows_go_in_the_same_transaction(container: Container, ws: str) -> None:
    recorder = Recorder()
    container.identity_listeners.append(recorder)
    track(
        container,
        ws,
        {
            "attributes": [{"external_id": "u1", "device_id": "d1"}, {"external_id": "u2"}],
            "events": [{"external_id": "u1", "name": "e", "time": T1}],
        },
    )
    with container.uow() as uow:
        deleted = services.delete_users(
            uow=uow,
            workspace_id=ws,
            body={"external_ids": ["u1", "u1", "nobody"], "braze_ids": ["0" * 24]},
            listeners=container.identity_listeners,
            now=NOW,
        )
    assert deleted == 1
    assert recorder.rows_seen == 0
    assert len(recorder.deleted) == 1
    assert rows(container, "SELECT external_id FROM users") == [("u2",)]
    assert rows(container, "SELECT count(*) FROM custom_events") == [(0,)]
    assert rows(container, "SELECT count(*) FROM user_devices") == [(0,)]


def test_invalid_requests_change_nothing(container: Container, ws: str) -> None:
    with container.uow() as uow, pytest.raises(InvalidUserRequest):
        services.track_users(uow=uow, workspace_id=ws, body={"events": [{"name": "x"}] * 76}, now=NOW)
    assert rows(container, "SELECT count(*) FROM users") == [(0,)]


def test_concurrent_requests_create_one_user_per_external_id(container: Container, ws: str) -> None:
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            track(
                container, ws, {"attributes": [{"external_id": "same", f"k{n}": n}, {"device_id": f"d{n}"}]}
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert rows(container, "SELECT count(*) FROM users WHERE external_id = 'same'") == [(1,)]
    (user,) = export(container, ws, {"external_ids": ["same"]}).users
    assert user["custom_attributes"] == {f"k{n}": n for n in range(4)}
