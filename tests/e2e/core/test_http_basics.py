"""Behaviour every endpoint shares: JSON errors, OpenAPI, health."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer


def test_openapi_document_is_served(live_server: LiveServer) -> None:
    doc = httpx.get(f"{live_server.url}/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "ErrorBody" in doc["components"]["schemas"]


def test_unknown_paths_answer_json(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/no/such/path")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found", "request_id": response.headers["x-request-id"]}


def test_health(live_server: LiveServer) -> None:
    assert httpx.get(f"{live_server.url}/healthz").json() == {"status": "ok"}
