"""A workspace with Heap enabled and a client on the live server, for hostile-input tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cohorthub.bootstrap import Container
from tests.conftest import LiveServer
from tests.integration.cohorts.factories import Tenant, make_tenant


class Hub:
    """Calls against the live server with the tenant's keys at hand."""

    def __init__(self, http: httpx.Client, tenant: Tenant) -> None:
        self.http = http
        self.tenant = tenant
        self.auth = {"Authorization": f"Bearer {tenant.rest_key}"}

    def get(self, path: str, **params: str) -> httpx.Response:
        """GET with the REST key."""
        return self.http.get(path, params=params, headers=self.auth)

    def post(self, path: str, body: Any) -> httpx.Response:
        """POST JSON with the REST key."""
        return self.http.post(path, json=body, headers=self.auth)

    def raw(self, method: str, path: str, content: bytes) -> httpx.Response:
        """Send `content` as a JSON body with the REST key."""
        headers = {**self.auth, "Content-Type": "application/json"}
        return self.http.request(method, path, content=content, headers=headers)

    def partner(self, path: str, **fields: Any) -> httpx.Response:
        """POST a partner body with the tenant's partner keys."""
        return self.http.post(f"/partners/heap{path}", json=self.tenant.body(**fields))

    def segment(self, filter_: Any, **fields: Any) -> httpx.Response:
        """POST /segments."""
        return self.post("/segments", {"name": "S", "filter": filter_, **fields})


@pytest.fixture
def hub(container: Container, live_server: LiveServer) -> Iterator[Hub]:
    """A tenant and an HTTP client on the live server."""
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        yield Hub(http, make_tenant(container))
