"""Protocol §8 A–B (TV-01…TV-26) over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import httpx
from sqlalchemy import select

from cohorthub.bootstrap import Container, bootstrap
from cohorthub.config import Settings
from cohorthub.partners import services as partners
from cohorthub.store.tables import cohorts
from tests.conftest import LiveServer, clear_of_the_hours_end
from tests.e2e.cohorts.conftest import Api
from tests.integration.cohorts.factories import NOW, Tenant, add_user, add_users, make_tenant, user_count

CHANGES_TEXT = (
    "`cohort_changes` must be an array of objects each with key `user_ids` and/or `device_ids` "
    "mapping to an array of strings, or an `aliases` object"
)
TOO_MANY_TEXT = "Only 1,000 `user_ids`, `device_ids`, and `aliases` are allowed per request"


def _error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["message"] == message


def test_tv01_create_cohort(api: Api) -> None:
    response = api.name("heap-123")
    assert response.status_code == 201
    assert response.json()["message"] == "success"
    [cohort] = api.cohorts()
    assert (cohort["cohort_id"], cohort["name"], cohort["size"]) == ("heap-123", "Trial abandoners", 0)
    assert cohort["created_at"] == "2021-01-21T14:20:30.000Z"


def test_tv02_rename_keeps_members_and_identity(api: Api, container: Container, tenant: Tenant) -> None:
    add_users(container, tenant.workspace_id, ["u1"])
    api.name("heap-123")
    api.users("heap-123", [{"user_ids": ["u1"]}])
    assert api.name("heap-123", "Trial abandoners v2").status_code == 201
    [cohort] = api.cohorts()
    assert (cohort["name"], cohort["size"]) == ("Trial abandoners v2", 1)
    assert api.members("heap-123") == {"u1"}


def test_tv03_empty_or_missing_name(api: Api) -> None:
    _error(api.name("heap-123", ""), 400, "`name` must be a non-empty string")
    _error(api.name("heap-123", None), 400, "`name` must be a non-empty string")
    assert api.cohorts() == []


def test_tv04_created_at_must_be_iso8601(api: Api) -> None:
    bad = api.name("heap-123", created_at="yesterday")
    _error(bad, 400, "`created_at` must be a valid time as an ISO-8601 string")
    assert api.name("heap-123", created_at="2022-12-01T17:40:04.055Z").status_code == 201
    assert api.cohorts()[0]["created_at"] == "2022-12-01T17:40:04.055Z"


def test_tv05_cohort_id_must_be_a_string(api: Api) -> None:
    _error(api.name(123), 400, "`cohort_id` must be a valid string")
    _error(api.users(123, []), 400, "`cohort_id` must be a valid string")


def test_tv06_wrong_partner_key(api: Api) -> None:
    _error(api.name("heap-123", partner_api_key="nope"), 401, "Invalid Partner API key")


def test_tv07_wrong_client_secret(api: Api) -> None:
    _error(api.name("heap-123", client_secret="nope"), 401, "Invalid client secret")


def test_tv08_partner_not_enabled_echoes_the_secret(api: Api, container: Container, tenant: Tenant) -> None:
    with container.uow() as uow:
        partners.disable_partner(uow=uow, workspace_id=tenant.workspace_id, partner="heap", now=NOW)
    expected = f"Partner not enabled for client with client secret: {tenant.client_secret}"
    _error(api.name("heap-123"), 401, expected)


def test_tv09_key_issued_elsewhere_is_invalid(api: Api, container: Container) -> None:
    with container.uow() as uow:
        other = partners.issue_partner_key(uow=uow, partner="mixpanel", now=NOW)
    _error(api.name("heap-123", partner_api_key=other), 401, "Invalid Partner API key")


def test_tv10_tv11_add_then_remove(api: Api, container: Container, tenant: Tenant) -> None:
    add_users(container, tenant.workspace_id, ["test_user_1", "test_user_2"])
    api.name("heap-123")
    added = api.users("heap-123", [{"user_ids": ["test_user_1", "test_user_2"]}])
    assert added.status_code == 201
    assert (added.json()["entered"], added.json()["identifiers_matched"]) == (2, 2)
    removed = api.users("heap-123", [{"user_ids": ["test_user_1"], "should_remove": True}])
    assert (removed.status_code, removed.json()["left"]) == (201, 1)
    assert api.members("heap-123") == {"test_user_2"}


def test_tv12_should_remove_absent_or_null_adds(api: Api, container: Container, tenant: Tenant) -> None:
    add_users(container, tenant.workspace_id, ["a", "b", "c"])
    api.users("heap-123", [{"user_ids": ["a"]}, {"user_ids": ["b"], "should_remove": None}])
    api.users("heap-123", [{"user_ids": ["c"], "should_remove": False}])
    assert api.members("heap-123") == {"a", "b", "c"}


def test_tv13_segment_shape(api: Api, container: Container, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    add_users(container, ws, ["u1"])
    anon = add_user(container, ws, devices=["dev-9"])
    aliased = add_user(container, ws, aliases=[("email", "a@x.com")])
    api.users(
        "heap-123",
        [{"device_ids": ["dev-9"], "aliases": [{"alias_name": "a@x.com", "alias_label": "email"}]}],
    )
    assert len(api.members("heap-123")) == 2
    response = api.users(
        "heap-123",
        [
            {"user_ids": ["u1"], "device_ids": [], "aliases": []},
            {
                "user_ids": [],
                "device_ids": ["dev-9"],
                "aliases": [{"alias_name": "a@x.com", "alias_label": "email"}],
                "should_remove": True,
            },
        ],
    )
    assert response.status_code == 201
    assert (response.json()["entered"], response.json()["left"]) == (1, 2)
    assert api.members("heap-123") == {"u1"}
    assert anon != aliased


def test_tv14_exactly_1000_identifiers(api: Api, container: Container, tenant: Tenant) -> None:
    add_users(container, tenant.workspace_id, [f"u{i}" for i in range(600)])
    changes = [
        {"user_ids": [f"u{i}" for i in range(600)]},
        {"device_ids": [f"d{i}" for i in range(300)]},
        {"aliases": [{"alias_label": "email", "alias_name": f"{i}@x.com"} for i in range(100)]},
    ]
    response = api.users("heap-123", changes)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["identifiers"], body["identifiers_matched"], body["identifiers_not_matched"]) == (
        1000,
        600,
        400,
    )
    assert api.cohorts()[0]["size"] == 600


def test_tv15_1001_identifiers_are_refused_whole(api: Api, container: Container, tenant: Tenant) -> None:
    add_users(container, tenant.workspace_id, [f"u{i}" for i in range(1001)])
    api.users("heap-123", [{"user_ids": ["u1000"]}])
    changes = [{"user_ids": [f"u{i}" for i in range(501)]}, {"user_ids": [f"u{i}" for i in range(501, 1001)]}]
    _error(api.users("heap-123", changes), 400, TOO_MANY_TEXT)
    assert api.members("heap-123") == {"u1000"}


def test_tv16_tv17_tv18_shape_errors(api: Api) -> None:
    for changes in (
        '[{"user_ids": ["a"]}]',
        [{"user_ids": [123]}],
        [{"should_remove": True}],
        [[]],
        [{"aliases": [{}]}],
    ):
        response = api.users("heap-123", changes)
        _error(response, 400, CHANGES_TEXT)
        assert response.json()["errors"], "the offending path is named"
    assert api.cohorts() == []


def test_empty_and_overlong_identifiers_name_the_path(api: Api) -> None:
    response = api.users("heap-123", [{"user_ids": ["ok"]}, {"device_ids": ["d", ""]}])
    _error(
        response,
        400,
        "`cohort_changes[1].device_ids[1]` must be a non-empty string of at most 512 characters",
    )
    response = api.users("heap-123", [{"aliases": [{"alias_label": "email", "alias_name": "x" * 513}]}])
    assert response.status_code == 400
    assert "cohort_changes[0].aliases[0].alias_name" in response.json()["message"]


def test_tv19_aliases_match_label_and_name(api: Api, container: Container, tenant: Tenant) -> None:
    add_user(container, tenant.workspace_id, aliases=[("email", "TDCohort1@gmail.com")])
    add_user(container, tenant.workspace_id, external_id="known", aliases=[("email", "known@x.com")])
    response = api.users(
        "heap-123",
        [{"aliases": [{"alias_label": "email", "alias_name": "TDCohort1@gmail.com"},
                      {"alias_label": "email", "alias_name": "known@x.com"},
                      {"alias_label": "phone", "alias_name": "known@x.com"}]}],
    )  # fmt: skip
    assert (response.json()["entered"], response.json()["identifiers_not_matched"]) == (2, 1)
    assert "known" in api.members("heap-123")


def test_tv20_unknown_external_id_is_ignored(api: Api, container: Container) -> None:
    before = user_count(container)
    response = api.users("heap-123", [{"user_ids": ["does-not-exist"]}])
    assert response.status_code == 201
    assert (response.json()["entered"], response.json()["identifiers_not_matched"]) == (0, 1)
    assert user_count(container) == before
    assert api.cohorts()[0]["diagnostics"]["unmatched_sample"] == ["user_ids:does-not-exist"]


def test_tv21_tv22_device_ids_match_anonymous_users_only(
    api: Api, container: Container, tenant: Tenant
) -> None:
    anon = add_user(container, tenant.workspace_id, devices=["dev-anon-1"])
    add_user(container, tenant.workspace_id, external_id="u2", devices=["dev-2"])
    response = api.users("heap-123", [{"device_ids": ["dev-anon-1", "dev-2"]}])
    assert (response.json()["entered"], response.json()["identifiers_not_matched"]) == (1, 1)
    assert len(api.members("heap-123")) == 1
    assert api.users("heap-123", [{"user_ids": ["u2"]}]).json()["entered"] == 1
    assert "u2" in api.members("heap-123")
    assert anon


def test_tv23_empty_change_list_is_a_credential_probe(api: Api) -> None:
    assert api.users("will_add_in_constant", []).status_code == 201
    assert api.cohorts() == [], "a probe creates no cohort"
    _error(api.users("will_add_in_constant", [], client_secret="bad"), 401, "Invalid client secret")


def test_tv24_hourly_quota(settings: Settings, tenant: Tenant) -> None:
    c = bootstrap(dataclasses.replace(settings, partner_hourly_quota=2), run_migrations=False)
    try:
        with LiveServer(c) as server, httpx.Client(base_url=server.url) as http:
            api = Api(http, tenant)
            clear_of_the_hours_end()  # the quota is per clock hour: all requests in one
            assert api.name("a", "").status_code == 400, "a rejected request is not counted"
            assert [api.users("a", []).status_code for _ in range(2)] == [201, 201]
            limited = api.users("a", [])
            assert limited.status_code == 429
            assert 1 <= int(limited.headers["Retry-After"]) <= 3600
    finally:
        c.close()


def test_tv25_a_locked_cohort_answers_423(settings: Settings, tenant: Tenant) -> None:
    c = bootstrap(dataclasses.replace(settings, lock_timeout_seconds=0.2), run_migrations=False)
    try:
        with LiveServer(c) as server, httpx.Client(base_url=server.url) as http:
            api = Api(http, tenant)
            api.name("heap-123")
            with c.engine.connect() as holder:
                holder.begin()  # SQLite: the database's write lock
                holder.execute(select(cohorts).with_for_update())  # PostgreSQL: the cohort row's lock
                locked = api.users("heap-123", [{"user_ids": ["u1"]}])
                holder.rollback()
            _error(locked, 423, "Resource locked")
            assert int(locked.headers["Retry-After"]) >= 1
            assert api.users("heap-123", [{"user_ids": ["u1"]}]).status_code == 201
    finally:
        c.close()


def test_tv26_users_before_name(api: Api, container: Container, tenant: Tenant) -> None:
    add_users(container, tenant.workspace_id, ["u1"])
    assert api.users("aud_1", [{"user_ids": ["u1"]}]).status_code == 201
    [cohort] = api.cohorts()
    assert (cohort["name"], cohort["named"], cohort["size"]) == ("aud_1", False, 1)
    api.name("aud_1", "Power users")
    [cohort] = api.cohorts()
    assert (cohort["name"], cohort["named"], cohort["size"]) == ("Power users", True, 1)


def test_order_of_checks(api: Api, client: httpx.Client, tenant: Tenant) -> None:
    _error(client.post("/partners/nosuch/cohorts", json={}), 404, "Unknown partner: nosuch")
    assert client.post("/partners/heap/cohorts", content=b"{}").status_code == 415
    bad_json = client.post(
        "/partners/heap/cohorts", content=b"{", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    _error(api.users(123, "x", partner_api_key="nope"), 401, "Invalid Partner API key")
    _error(client.post("/partners/heap/cohorts/users", json=[1]), 400, "Request body must be a JSON object")
    assert tenant


def test_add_then_remove_in_one_request_ends_removed(api: Api, container: Container, tenant: Tenant) -> None:
    add_users(container, tenant.workspace_id, ["a", "b"])
    changes = [{"user_ids": ["a", "b", "a"]}, {"user_ids": ["a"], "should_remove": True}]
    assert api.users("c", changes).json()["entered"] == 1
    assert api.members("c") == {"b"}
    again = api.users("c", changes).json()
    assert (again["entered"], again["left"]) == (0, 0), "a replay changes nothing"
    assert api.members("c") == {"b"}


def test_other_workspace_sees_nothing(api: Api, container: Container, client: httpx.Client) -> None:
    other = make_tenant(container, name="Other")
    add_users(container, other.workspace_id, ["u1"])
    assert api.users("c", [{"user_ids": ["u1"]}]).json()["entered"] == 0
    assert Api(client, other).cohorts() == []
