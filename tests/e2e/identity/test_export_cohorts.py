"""`/users/export/ids` lists the user's partner cohorts, and membership follows a sign-in merge."""

from __future__ import annotations

import httpx

from cohorthub.bootstrap import Container
from cohorthub.partners import services as partners
from tests.e2e.identity.conftest import NOW, Users, Workspace

T1 = "2024-03-01T12:00:00Z"


def test_export_lists_cohorts_and_membership_follows_a_merge(
    users: Users, client: httpx.Client, container: Container, workspace: Workspace
) -> None:
    with container.uow() as uow:
        partner_key = partners.issue_partner_key(uow=uow, partner="heap", now=NOW)
    with container.uow() as uow:
        secret = partners.enable_partner(
            uow=uow, workspace_id=workspace.id, partner="heap", now=NOW
        ).data_import_key
    keys = {"partner_api_key": partner_key, "client_secret": secret}

    def cohort(cohort_id: str, name: str, changes: list[dict[str, object]]) -> None:
        named = client.post(
            "/partners/heap/cohorts", json={**keys, "cohort_id": cohort_id, "name": name, "created_at": T1}
        )
        assert named.status_code < 300, named.text
        added = client.post(
            "/partners/heap/cohorts/users", json={**keys, "cohort_id": cohort_id, "cohort_changes": changes}
        )
        assert added.status_code < 300, added.text

    users.post(
        "/users/track",
        {
            "attributes": [{"external_id": "u1"}],
            "events": [{"device_id": "dev-1", "name": "opened", "time": T1}],
        },
    )
    cohort("c1", "Trial abandoners", [{"user_ids": ["u1"]}])
    cohort("c2", "Anonymous browsers", [{"device_ids": ["dev-1"]}])

    (user,) = users.export(external_ids=["u1"], fields_to_export=["external_id", "cohorts"])
    assert user == {
        "external_id": "u1",
        "cohorts": [{"partner": "heap", "cohort_id": "c1", "name": "Trial abandoners"}],
    }
    (anon,) = users.export(device_id="dev-1", fields_to_export=["cohorts"])
    assert anon["cohorts"] == [{"partner": "heap", "cohort_id": "c2", "name": "Anonymous browsers"}]

    users.post("/users/track", {"attributes": [{"external_id": "u1", "device_id": "dev-1"}]})
    (merged,) = users.export(external_ids=["u1"], fields_to_export=["cohorts"])
    assert sorted(c["cohort_id"] for c in merged["cohorts"]) == ["c1", "c2"]
