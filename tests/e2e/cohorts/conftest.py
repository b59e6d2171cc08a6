"""HTTP fixtures for the cohort API: a tenant, a client on the live server, small helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cohorthub.bootstrap import Container
from tests.conftest import LiveServer
from tests.integration.cohorts.factories import Tenant, make_tenant


@pytest.fixture
def tenant(container: Container) -> Tenant:
    """A workspace with Heap enabled."""
    return make_tenant(container)


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client on the live server."""
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        yield http


class Api:
    """The calls a partner and an operator make, with the tenant's keys filled in."""

    def __init__(self, http: httpx.Client, tenant: Tenant) -> None:
        self.http = http
        self.tenant = tenant

    def name(self, cohort_id: Any, name: Any = "Trial abandoners", **extra: Any) -> httpx.Response:
        """POST the cohort name endpoint."""
        fields = {"cohort_id": cohort_id, "name": name, "created_at": "2021-01-21T19:20:30+05:00", **extra}
        return self.http.post("/partners/heap/cohorts", json=self.tenant.body(**fields))

    def users(self, cohort_id: Any, changes: Any, **keys: Any) -> httpx.Response:
        """POST the user cohort endpoint."""
        body = {**self.tenant.body(cohort_id=cohort_id, cohort_changes=changes), **keys}
        return self.http.post("/partners/heap/cohorts/users", json=body)

    def cohorts(self) -> list[dict[str, Any]]:
        """GET /cohorts?partner=heap."""
        response = self.http.get("/cohorts", params={"partner": "heap"}, headers=self.auth())
        assert response.status_code == 200, response.text
        cohorts: list[dict[str, Any]] = response.json()["cohorts"]
        return cohorts

    def members(self, cohort_id: str) -> set[str]:
        """Every member's external_id (or braze_id for anonymous users)."""
        found: set[str] = set()
        cursor: str | None = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            response = self.http.get(f"/cohorts/heap/{cohort_id}/members", params=params, headers=self.auth())
            assert response.status_code == 200, response.text
            page = response.json()
            found.update(m["external_id"] or m["braze_id"] for m in page["members"])
            cursor = page["next_cursor"]
            if cursor is None:
                return found

    def auth(self) -> dict[str, str]:
        """The operator's REST key header."""
        return {"Authorization": f"Bearer {self.tenant.rest_key}"}


@pytest.fixture
def api(client: httpx.Client, tenant: Tenant) -> Api:
    """Partner and operator calls against the live server."""
    return Api(client, tenant)
