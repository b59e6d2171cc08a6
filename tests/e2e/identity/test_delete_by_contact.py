"""`/users/delete` by email address and phone number over HTTP: the users leave their partner cohorts."""

from __future__ import annotations

import httpx

from cohorthub.bootstrap import Container
from cohorthub.partners import services as partners
from tests.e2e.identity.conftest import NOW, Users, Workspace

T1 = "2024-03-01T12:00:00Z"


def heap_cohort(
    client: httpx.Client, container: Container, workspace: Workspace, user_ids: list[str]
) -> None:
    """Heap syncs cohort `c1` with `user_ids` to the workspace."""
    with container.uow() as uow:
        partner_key = partners.issue_partner_key(uow=uow, partner="heap", now=NOW)
    with container.uow() as uow:
        secret = partners.enable_partner(uow=uow, workspace_id=workspace.id, partner="heap", now=NOW)
    keys = {"partner_api_key": partner_key, "client_secret": secret.data_import_key}
    named = client.post(
        "/partners/heap/cohorts", json={**keys, "cohort_id": "c1", "name": "Churn risk", "created_at": T1}
    )
    assert named.status_code < 300, named.text
    added = client.post(
        "/partners/heap/cohorts/users",
        json={**keys, "cohort_id": "c1", "cohort_changes": [{"user_ids": user_ids}]},
    )
    assert added.status_code < 300, added.text


def members(users: Users) -> list[str]:
    """The external ids in cohort c1; checks the cohort's stored size agrees."""
    auth = {"Authorization": f"Bearer {users.key}"}
    response = users.http.get("/cohorts/heap/c1/members", headers=auth)
    assert response.status_code == 200, response.text
    found = sorted(m["external_id"] for m in response.json()["members"])
    (cohort,) = users.http.get("/cohorts", headers=auth).json()["cohorts"]
    assert cohort["size"] == len(found)
    return found


def test_deleted_users_leave_their_partner_cohorts(
    users: Users, client: httpx.Client, container: Container, workspace: Workspace
) -> None:
    track = users.post(
        "/users/track",
        {
            "attributes": [
                {"external_id": "ann", "email": "Ann@Example.com"},
                {"external_id": "bob", "phone": "+15551234"},
                {"external_id": "cy", "email": "cy@example.com", "phone": "+15559999"},
                {"external_id": "dee", "email": "shared@example.com"},
                {"external_id": "eve", "email": "shared@example.com"},
            ]
        },
    )
    assert track.status_code == 201, track.text
    heap_cohort(client, container, workspace, ["ann", "bob", "cy", "dee", "eve"])
    assert members(users) == ["ann", "bob", "cy", "dee", "eve"]

    response = users.post(
        "/users/delete", {"email_addresses": ["ANN@example.COM"], "phone_numbers": ["+15551234"]}
    )
    assert (response.status_code, response.json()) == (201, {"deleted": 2, "message": "success"})
    assert members(users) == ["cy", "dee", "eve"]
    assert users.export(email_address="ann@example.com") == []

    # Two users share the email: no prioritization, or one that leaves both, deletes no one.
    ambiguous = {"email": "shared@example.com", "prioritization": ["identified", "most_recently_updated"]}
    response = users.post("/users/delete", {"email_addresses": ["shared@example.com", ambiguous]})
    assert (response.status_code, response.json()) == (201, {"deleted": 0, "message": "success"})
    assert members(users) == ["cy", "dee", "eve"]

    bad = users.post(
        "/users/delete", {"external_ids": ["cy"], "email_addresses": [{"email": "not-an-email"}]}
    )
    assert bad.status_code == 400
    assert "email_addresses[0]: email is not an email address" in bad.text
    too_many = users.post("/users/delete", {"external_ids": ["cy"] * 50, "phone_numbers": ["+15559999"]})
    assert too_many.status_code == 400
    assert "Too many identifiers: 51 given, at most 50 per request" in too_many.text
    assert members(users) == ["cy", "dee", "eve"]


def test_openapi_documents_email_addresses_and_phone_numbers(client: httpx.Client) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    properties = schemas["DeleteRequest"]["properties"]
    assert {"email_addresses", "phone_numbers"} <= set(properties)
    assert set(schemas["EmailToDelete"]["properties"]) == {"email", "prioritization"}
