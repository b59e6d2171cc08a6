"""Concurrent cohort imports over HTTP: membership is exact whatever the interleaving.

Eight clients hit two cohorts at once (on SQLite their requests share commits). Each adds its own
users and removes some of them again; one request of each is malformed (400) and, once the
partner's hourly quota is spent, the rest are refused (429) after their membership was written in
the shared transaction. The refused ones change nothing, every acknowledged one counts.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from cohorthub.bootstrap import Container
from cohorthub.config import Settings
from tests.conftest import LiveServer, clear_of_the_hours_end
from tests.e2e.cohorts.conftest import Api
from tests.integration.cohorts.factories import Tenant, add_user

QUOTA = 50
CLIENTS = 8
ROUNDS = 6
PER_REQUEST = 20


def _plan(client: int) -> list[tuple[str, dict[str, Any]]]:
    """(cohort, change) of each request of a client: adds, removals of earlier adds, one refusal."""
    plan: list[tuple[str, dict[str, Any]]] = []
    for r in range(ROUNDS):
        cohort = "even" if (client + r) % 2 == 0 else "odd"
        ids = [f"u-{client}-{r}-{k}" for k in range(PER_REQUEST)]
        plan.append((cohort, {"user_ids": ids}))
        if r % 2:  # remove half of what this client added to this cohort two rounds ago
            earlier = [f"u-{client}-{r - 2}-{k}" for k in range(0, PER_REQUEST, 2)] if r >= 2 else []
            plan.append((cohort, {"user_ids": earlier or ids[:1], "should_remove": True}))
    plan.insert(3, ("even", {"user_ids": [f"u-{client}-0-0"], "should_remove": "yes"}))
    return plan


@pytest.fixture
def settings(database_url: str) -> Settings:
    """A partner quota the clients run out of half-way."""
    return Settings(database_url=database_url, public_url="http://testserver", partner_hourly_quota=QUOTA)


Sent = list[tuple[str, dict[str, Any], int]]


def _expected(sent: list[Sent]) -> dict[str, set[str]]:
    members: dict[str, set[str]] = {"even": set(), "odd": set()}
    for requests in sent:  # each user is named by one client only: the order between clients is moot
        for cohort, change, status in requests:
            if status != 201:
                continue
            ids = set(change["user_ids"])
            members[cohort] = members[cohort] - ids if change.get("should_remove") else members[cohort] | ids
    return members


def _members(api: Api, cohort_id: str) -> set[str]:
    response = api.http.get(
        f"/cohorts/heap/{cohort_id}/members", params={"limit": "1000"}, headers=api.auth()
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None
    return {m["external_id"] for m in page["members"]}


def test_concurrent_imports_leave_exactly_the_members_they_acknowledged(
    container: Container, tenant: Tenant, live_server: LiveServer
) -> None:
    for client in range(CLIENTS):
        for r in range(ROUNDS):
            for k in range(PER_REQUEST):
                add_user(container, tenant.workspace_id, external_id=f"u-{client}-{r}-{k}")
    sent: list[Sent] = [[] for _ in range(CLIENTS)]

    def run(client: int) -> None:
        with httpx.Client(base_url=live_server.url, timeout=30) as http:
            for cohort, change in _plan(client):
                body = tenant.body(cohort_id=cohort, cohort_changes=[change])
                status = http.post("/partners/heap/cohorts/users", json=body).status_code
                sent[client].append((cohort, change, status))

    threads = [threading.Thread(target=run, args=(client,)) for client in range(CLIENTS)]
    clear_of_the_hours_end()  # the quota is per clock hour: all requests in one
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    statuses = [status for requests in sent for _, _, status in requests]
    assert statuses.count(400) == CLIENTS and statuses.count(201) == QUOTA
    assert statuses.count(429) == len(statuses) - QUOTA - CLIENTS > 0
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        api = Api(http, tenant)
        expected = _expected(sent)
        assert _members(api, "even") == expected["even"]
        assert _members(api, "odd") == expected["odd"]
        sizes = {c["cohort_id"]: c["size"] for c in api.cohorts()}
        assert sizes == {name: len(ids) for name, ids in expected.items()}
