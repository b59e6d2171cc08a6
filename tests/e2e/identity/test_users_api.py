"""The users API over HTTP: every endpoint, the conformance vectors TV-43…TV-46, and bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from cohorthub.api.users import KNOWN_KEYS, Credentials, KnownKeys
from cohorthub.bootstrap import Container
from cohorthub.workspaces import services as workspaces
from tests.e2e.identity.conftest import NOW, Users, Workspace

T1 = "2024-03-01T12:00:00Z"
ALIAS = {"alias_name": "example_name", "alias_label": "example_label"}


def counts(c: Container) -> tuple[int, ...]:
    """Rows in every identity table and the outbox (to show that nothing changed)."""
    tables = ("users", "user_aliases", "user_devices", "custom_events", "purchases", "outbox")
    with c.engine.connect() as conn:
        return tuple(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables)


def test_track_then_export(users: Users) -> None:
    response = users.post(
        "/users/track",
        {
            "attributes": [{"external_id": "u1", "first_name": "Jon", "dob": "1988-02-14", "tier": 3}],
            "events": [{"external_id": "u1", "name": "rented_movie", "time": T1, "properties": {"a": 1}}],
            "purchases": [
                {
                    "external_id": "u1",
                    "product_id": "p1",
                    "currency": "USD",
                    "price": 12.12,
                    "quantity": 6,
                    "time": T1,
                }
            ],
        },
    )
    assert response.status_code == 201
    assert response.json() == {
        "message": "success",
        "attributes_processed": 1,
        "events_processed": 1,
        "purchases_processed": 1,
    }
    (user,) = users.export(external_ids=["u1"])
    assert user["first_name"] == "Jon"
    assert user["dob"] == "1988-02-14"
    assert user["custom_attributes"] == {"tier": 3}
    assert user["custom_events"] == [
        {
            "name": "rented_movie",
            "first": "2024-03-01T12:00:00.000Z",
            "last": "2024-03-01T12:00:00.000Z",
            "count": 1,
        }
    ]
    assert user["purchases"][0]["name"] == "p1"
    assert user["cohorts"] == []
    assert len(user["braze_id"]) == 24


def test_tv43_seventy_six_events_is_fatal_and_changes_nothing(users: Users, container: Container) -> None:
    before = counts(container)
    event = {"external_id": "u1", "name": "e", "time": T1}
    response = users.post("/users/track", {"events": [event] * 76})
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Too many events: 76 given, at most 75 per request"
    assert body["errors"]
    assert counts(container) == before


def test_tv44_alias_only_user_is_created_only_when_asked(users: Users) -> None:
    without = users.post("/users/track", {"attributes": [{"user_alias": ALIAS, "email": "e@x.io"}]})
    assert without.status_code == 201
    assert without.json()["errors"][0]["input_array"] == "attributes"
    assert users.export(user_aliases=[ALIAS]) == []
    created = users.post(
        "/users/track",
        {"attributes": [{"_update_existing_only": False, "user_alias": ALIAS, "email": "e@x.io"}]},
    )
    assert created.json() == {"message": "success", "attributes_processed": 1}
    (user,) = users.export(user_aliases=[ALIAS])
    assert user["user_aliases"] == [ALIAS]
    assert "external_id" not in user


def test_tv45_identify(users: Users) -> None:
    alias = {"alias_name": "example_alias", "alias_label": "example_label"}
    users.post("/users/alias/new", {"user_aliases": [alias]})
    response = users.post(
        "/users/identify",
        {"aliases_to_identify": [{"external_id": "external_identifier", "user_alias": alias}]},
    )
    assert response.status_code == 201
    assert response.json() == {"aliases_processed": 1, "message": "success"}
    (by_id,) = users.export(external_ids=["external_identifier"])
    (by_alias,) = users.export(user_aliases=[alias])
    assert by_id == by_alias
    assert by_id["user_aliases"] == [alias]


def test_tv46_delete(users: Users) -> None:
    users.post("/users/track", {"attributes": [{"external_id": "external_identifier1"}]})
    response = users.post("/users/delete", {"external_ids": ["external_identifier1"]})
    assert (response.status_code, response.json()) == (201, {"deleted": 1, "message": "success"})
    export = users.post("/users/export/ids", {"external_ids": ["external_identifier1"]})
    assert export.json() == {"users": [], "message": "success", "invalid_user_ids": ["external_identifier1"]}


def test_alias_new_with_and_without_external_id(users: Users) -> None:
    users.post("/users/track", {"attributes": [{"external_id": "u1"}]})
    response = users.post(
        "/users/alias/new",
        {
            "user_aliases": [
                {"external_id": "u1", "alias_name": "n1", "alias_label": "crm"},
                {"alias_name": "n2", "alias_label": "crm"},
                {"external_id": "ghost", "alias_name": "n3", "alias_label": "crm"},
            ]
        },
    )
    assert response.status_code == 201
    assert response.json() == {
        "aliases_processed": 2,
        "message": "success",
        "errors": ["user_aliases[2]: no user with external_id 'ghost'"],
    }
    (u1,) = users.export(external_ids=["u1"])
    assert u1["user_aliases"] == [{"alias_name": "n1", "alias_label": "crm"}]
    (alias_only,) = users.export(user_aliases=[{"alias_name": "n2", "alias_label": "crm"}])
    assert "external_id" not in alias_only


def test_device_sign_in_over_http(users: Users) -> None:
    users.post("/users/track", {"events": [{"device_id": "dev-1", "name": "opened", "time": T1}]})
    (anon,) = users.export(device_id="dev-1")
    assert "external_id" not in anon
    users.post("/users/track", {"attributes": [{"external_id": "u1", "first_name": "Known"}]})
    users.post("/users/track", {"attributes": [{"external_id": "u1", "device_id": "dev-1"}]})
    (user,) = users.export(device_id="dev-1")
    assert user["external_id"] == "u1"
    assert user["custom_events"][0]["name"] == "opened"
    assert users.export(braze_id=anon["braze_id"]) == []


def test_unicode_identifiers_round_trip(users: Users) -> None:
    ext = "ユーザー/ü ✓ 🚀"
    alias = {"alias_name": "名前", "alias_label": "ラベル"}
    users.post(
        "/users/track", {"attributes": [{"external_id": ext, "first_name": "Zoë", "city_tags": ["Köln"]}]}
    )
    users.post("/users/alias/new", {"user_aliases": [{"external_id": ext, **alias}]})
    (user,) = users.export(user_aliases=[alias])
    assert (user["external_id"], user["first_name"]) == (ext, "Zoë")
    assert user["custom_attributes"] == {"city_tags": ["Köln"]}


def test_export_fields_and_lookups(users: Users) -> None:
    users.post(
        "/users/track",
        {
            "attributes": [
                {
                    "external_id": "u1",
                    "email": "Ana@X.io",
                    "phone": "+15551234",
                    "last_seen": {"$time": "2024-01-02T03:04:05+01:00"},
                }
            ]
        },
    )
    (by_email,) = users.export(email_address="ana@x.io", fields_to_export=["external_id", "email", "apps"])
    assert by_email == {"external_id": "u1", "email": "ana@x.io"}
    (by_phone,) = users.export(phone="+15551234", fields_to_export=["custom_attributes"])
    assert by_phone == {"custom_attributes": {"last_seen": "2024-01-02T02:04:05.000Z"}}


def test_non_fatal_errors_keep_the_valid_objects(users: Users) -> None:
    response = users.post(
        "/users/track",
        {"attributes": [{"external_id": "u1", "gender": "X"}, {"external_id": "u2", "gender": "F"}]},
    )
    assert response.status_code == 201
    assert response.json() == {
        "message": "success",
        "attributes_processed": 1,
        "errors": [{"type": "gender must be one of M, F, O, N, P", "input_array": "attributes", "index": 0}],
    }
    assert [u["external_id"] for u in users.export(external_ids=["u1", "u2"])] == ["u2"]


BAD_REQUESTS: list[tuple[str, Any, str]] = [
    ("/users/track", {"events": "nope"}, "'events' must be an array of objects"),
    ("/users/track", {"attributes": [{"external_id": "x" * 10_240}]}, "external_id is longer than 512"),
    ("/users/track", {"attributes": [{"external_id": 5}]}, "external_id must be a string"),
    ("/users/track", {"attributes": [{"external_id": "a\u0000b"}]}, "must not contain NUL"),
    ("/users/track", {"attributes": [{"external_id": "u"}] * 76}, "Too many attributes: 76 given"),
    ("/users/track", {"purchases": [{"external_id": "u"}] * 76}, "Too many purchases: 76 given"),
    ("/users/track", [], "Request body must be a JSON object"),
    (
        "/users/identify",
        {"aliases_to_identify": [{"external_id": "u", "user_alias": ALIAS}] * 51},
        "Too many aliases_to_identify: 51 given, at most 50",
    ),
    (
        "/users/identify",
        {"aliases_to_identify": [{"external_id": "u", "user_alias": "x"}]},
        "user_alias must be an object",
    ),
    ("/users/identify", {}, "One of aliases_to_identify"),
    (
        "/users/alias/new",
        {"user_aliases": [{"alias_name": "n", "alias_label": "x" * 10_240}]},
        "alias_label is longer than 512",
    ),
    ("/users/alias/new", {"user_aliases": [ALIAS] * 51}, "Too many user_aliases: 51 given"),
    ("/users/delete", {"external_ids": ["a"] * 51}, "Too many external_ids: 51 given, at most 50"),
    ("/users/delete", {"external_ids": [1]}, "external_id must be a string"),
    (
        "/users/delete",
        {},
        "One of external_ids, user_aliases, braze_ids, email_addresses or phone_numbers is required",
    ),
    ("/users/export/ids", {"external_ids": ["a"] * 51}, "Too many external_ids: 51 given"),
    ("/users/export/ids", {"external_ids": ["a"], "fields_to_export": ["bogus"]}, "Unknown fields_to_export"),
    ("/users/export/ids", {"device_id": 7}, "device_id must be a string"),
]


@pytest.mark.parametrize(("path", "body", "message"), BAD_REQUESTS)
def test_bad_input_is_a_clear_400_and_changes_nothing(
    users: Users, container: Container, path: str, body: Any, message: str
) -> None:
    users.post("/users/track", {"attributes": [{"external_id": "u"}]})
    before = counts(container)
    response = users.post(path, body)
    assert response.status_code == 400, response.text
    text_ = response.json()["message"] + " ".join(response.json().get("errors", []))
    assert message in text_
    assert counts(container) == before


def test_malformed_json_and_wrong_media_type(users: Users, client: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {users.key}"}
    broken = client.post(
        "/users/track", content=b'{"attributes": [', headers={**auth, "Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["message"].startswith("Request body is not valid JSON")
    form = client.post("/users/track", content=b"a=b", headers={**auth, "Content-Type": "text/plain"})
    assert form.status_code == 415


def test_auth_bearer_legacy_missing_and_permission(
    users: Users, client: httpx.Client, container: Container, workspace: Workspace
) -> None:
    body = {"attributes": [{"external_id": "u1"}]}
    legacy = client.post("/users/track", json={**body, "api_key": workspace.key})
    assert legacy.status_code == 201
    missing = client.post("/users/track", json=body)
    assert missing.status_code == 401
    wrong = users.post("/users/track", body, key="not-a-key")
    assert wrong.status_code == 401
    with container.uow() as uow:
        narrow = workspaces.create_rest_key(
            uow=uow, workspace_id=workspace.id, name="export only", permissions=["users.export.ids"], now=NOW
        )
    denied = users.post("/users/delete", {"external_ids": ["u1"]}, key=narrow.key)
    assert (denied.status_code, denied.json()["message"]) == (
        403,
        "This API key does not have the users.delete permission",
    )
    assert users.post("/users/export/ids", {"external_ids": ["u1"]}, key=narrow.key).status_code == 200


def test_workspaces_do_not_see_each_other(users: Users, container: Container) -> None:
    users.post("/users/track", {"attributes": [{"external_id": "u1"}]})
    with container.uow() as uow:
        _, other = workspaces.create_workspace(uow=uow, name="Other", now=NOW)
    response = users.post("/users/export/ids", {"external_ids": ["u1"]}, key=other.key)
    assert response.json()["users"] == []
    assert users.post("/users/delete", {"external_ids": ["u1"]}, key=other.key).json()["deleted"] == 0


def test_openapi_documents_the_users_endpoints(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/users/track", "/users/identify", "/users/alias/new", "/users/delete", "/users/export/ids"):
        assert "post" in paths[path]
    assert "201" in paths["/users/track"]["post"]["responses"]


def test_track_authenticates_in_its_write_transaction(
    users: Users, client: httpx.Client, container: Container, workspace: Workspace
) -> None:
    begins: list[str] = []
    event.listen(
        container.engine,
        "before_cursor_execute",
        lambda *args: begins.append(args[2]) if args[2].startswith("BEGIN") else None,
    )
    KNOWN_KEYS.add(Credentials(None, "users.track"))  # a full set is forgotten, the next key is unknown
    for _ in range(KnownKeys.LIMIT):
        KNOWN_KEYS.add(Credentials(f"other-{_}", "users.track"))
    sqlite = container.engine.dialect.name == "sqlite"
    assert users.post("/users/track", {"attributes": [{"external_id": "u0"}]}).status_code == 201
    if sqlite:  # a key not seen yet: checked read-only first (BEGIN), then the write (BEGIN IMMEDIATE)
        assert begins == ["BEGIN DEFERRED", "BEGIN IMMEDIATE"]
    begins.clear()
    assert users.post("/users/track", {"attributes": [{"external_id": "u1"}]}).status_code == 201
    if sqlite:  # a key that authenticated: one transaction, no read-only one before it
        assert begins == ["BEGIN IMMEDIATE"]
    begins.clear()
    for _ in range(2):  # a wrong key never takes the writer's turn, however often it is tried
        wrong = users.post("/users/track", {"attributes": [{"external_id": "u9"}]}, key="wrong")
        assert wrong.status_code == 401
    if sqlite:
        assert "BEGIN IMMEDIATE" not in begins
    with container.uow() as uow:
        narrow = workspaces.create_rest_key(
            uow=uow, workspace_id=workspace.id, name="export only", permissions=["users.export.ids"], now=NOW
        )
    body = {"attributes": [{"external_id": "u2", "plan": "pro"}], "events": [{"external_id": "u2"}]}
    denied = users.post("/users/track", body, key=narrow.key)
    assert (denied.status_code, denied.json()["message"]) == (
        403,
        "This API key does not have the users.track permission",
    )
    assert users.post("/users/track", body, key="not-a-key").status_code == 401
    assert users.export(external_ids=["u2"]) == []  # nothing of a refused request was written
    assert users.export(external_ids=["u1"])[0]["external_id"] == "u1"
    unusable = {"attributes": [{"plan": "no identifier"}]}  # a 400 with a good key
    assert users.post("/users/track", unusable).status_code == 400
    assert users.post("/users/track", unusable, key="not-a-key").status_code == 401
    assert users.post("/users/track", unusable, key=narrow.key).status_code == 403
