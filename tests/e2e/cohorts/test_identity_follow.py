"""Membership follows identity over the users API: a merge moves it, a delete ends it."""

from __future__ import annotations

from typing import Any

from tests.e2e.cohorts.conftest import Api

ALIAS = {"alias_name": "a@x.com", "alias_label": "email"}


def _post(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.http.post(path, json=body, headers=api.auth())
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


def _cohorts_of(api: Api, external_id: str) -> list[str]:
    users = _post(api, "/users/export/ids", {"external_ids": [external_id]})["users"]
    return sorted(c["cohort_id"] for c in users[0].get("cohorts") or [])


def test_identify_merge_moves_membership_and_delete_removes_it(api: Api) -> None:
    _post(api, "/users/track", {"attributes": [{"external_id": "u1", "first_name": "Ann"}]})
    _post(
        api,
        "/users/track",
        {"attributes": [{"user_alias": ALIAS, "_update_existing_only": False, "first_name": "Anon"}]},
    )
    assert api.users("heap-1", [{"aliases": [ALIAS]}]).json()["entered"] == 1
    assert api.users("heap-2", [{"user_ids": ["u1"]}]).json()["entered"] == 1
    assert len(api.members("heap-1")) == 1
    assert "u1" not in api.members("heap-1")

    _post(api, "/users/identify", {"aliases_to_identify": [{"external_id": "u1", "user_alias": ALIAS}]})
    assert api.members("heap-1") == {"u1"}
    assert _cohorts_of(api, "u1") == ["heap-1", "heap-2"]
    sizes = {c["cohort_id"]: c["size"] for c in api.cohorts()}
    assert sizes == {"heap-1": 1, "heap-2": 1}

    _post(api, "/users/delete", {"external_ids": ["u1"]})
    assert (api.members("heap-1"), api.members("heap-2")) == (set(), set())
    assert {c["cohort_id"]: c["size"] for c in api.cohorts()} == {"heap-1": 0, "heap-2": 0}
