"""The cohort read API and the OpenAPI entries, over real HTTP."""

from __future__ import annotations

import httpx

from cohorthub.bootstrap import Container
from cohorthub.workspaces import services as workspaces
from tests.e2e.cohorts.conftest import Api
from tests.integration.cohorts.factories import NOW, Tenant, add_user, add_users


def test_members_page_in_a_stable_order(api: Api, container: Container, tenant: Tenant) -> None:
    nums = add_users(container, tenant.workspace_id, [f"u{i}" for i in range(5)])
    add_user(container, tenant.workspace_id, external_id="aliased", aliases=[("email", "a@x.com")])
    api.users("c", [{"user_ids": [f"u{i}" for i in range(5)] + ["aliased"]}])
    first = api.http.get("/cohorts/heap/c/members", params={"limit": "4"}, headers=api.auth()).json()
    assert [m["external_id"] for m in first["members"]] == ["u0", "u1", "u2", "u3"]
    assert first["next_cursor"] == str(nums[3])
    rest = api.http.get(
        "/cohorts/heap/c/members", params={"limit": "4", "cursor": first["next_cursor"]}, headers=api.auth()
    ).json()
    assert [m["external_id"] for m in rest["members"]] == ["u4", "aliased"]
    assert rest["members"][1]["user_aliases"] == [{"alias_label": "email", "alias_name": "a@x.com"}]
    assert rest["next_cursor"] is None


def test_cohort_ids_with_slashes(api: Api, container: Container, tenant: Tenant) -> None:
    add_users(container, tenant.workspace_id, ["u1"])
    api.users("team/a b", [{"user_ids": ["u1"]}])
    response = api.http.get("/cohorts/heap/team%2Fa%20b/members", headers=api.auth())
    assert [m["external_id"] for m in response.json()["members"]] == ["u1"]


def test_read_api_errors(api: Api, client: httpx.Client, container: Container, tenant: Tenant) -> None:
    api.name("c")
    assert client.get("/cohorts").status_code == 401
    with container.uow() as uow:
        narrow = workspaces.create_rest_key(
            uow=uow, workspace_id=tenant.workspace_id, name="n", permissions=["users.track"], now=NOW
        )
    assert client.get("/cohorts", headers={"Authorization": f"Bearer {narrow.key}"}).status_code == 403
    assert client.get("/cohorts", params={"partner": "nosuch"}, headers=api.auth()).status_code == 404
    members = "/cohorts/heap/c/members"
    for params in ({"limit": "0"}, {"limit": "1001"}, {"limit": "x"}, {"cursor": "abc"}):
        assert client.get(members, params=params, headers=api.auth()).status_code == 400, params
    missing = client.get("/cohorts/heap/nope/members", headers=api.auth())
    assert (missing.status_code, missing.json()["message"]) == (404, "Unknown cohort: heap/nope")


def test_openapi_documents_the_cohort_endpoints(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert paths["/partners/{partner}/cohorts/users"]["post"]["responses"]["201"]
    assert "423" in paths["/partners/{partner}/cohorts"]["post"]["responses"]
    assert paths["/cohorts"]["get"]["security"] == [{"restApiKey": []}]
    assert "/cohorts/{partner}/{cohort_id}/members" in paths
