"""Currents over HTTP: connectors, statistics, permissions, OpenAPI and /metrics."""

from __future__ import annotations

import httpx

from cohorthub.bootstrap import Container
from cohorthub.workspaces import services as workspaces
from tests.conftest import LiveServer

NOW = 1_800_000_000.0


def _keys(c: Container) -> tuple[str, str, str]:
    with c.uow() as uow:
        ws, full = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    with c.uow() as uow:
        reader = workspaces.create_rest_key(
            uow=uow, workspace_id=ws.id, name="r", permissions=["currents.read"], now=NOW
        )
    return ws.id, full.key, reader.key


def test_connector_lifecycle_and_permissions(container: Container, live_server: LiveServer) -> None:
    ws, key, reader = _keys(container)
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=live_server.url) as http:
        body = {
            "kind": "heap",
            "url": "https://heap.example/braze",
            "token": "0p3n5354m3==",
            "events": "users.behaviors.*",
            "batch_size": 500,
        }
        created = http.post("/currents", json=body, headers=auth)
        assert created.status_code == 201
        connector = created.json()
        assert connector["has_token"] is True and "token" not in connector
        assert "0p3n5354m3" not in created.text
        cid = connector["id"]
        assert (
            http.get("/currents", headers={"Authorization": f"Bearer {reader}"}).json()["connectors"][0]["id"]
            == cid
        )
        denied = http.post("/currents", json=body, headers={"Authorization": f"Bearer {reader}"})
        assert denied.status_code == 403
        assert denied.json()["message"] == "This API key does not have the currents.write permission"
        assert http.get("/currents").status_code == 401
        assert http.post(f"/currents/{cid}/pause", headers=auth).json()["paused"] is True
        assert http.post(f"/currents/{cid}/resume", headers=auth).json()["paused"] is False
        stats = http.get(f"/currents/{cid}/stats", headers={"Authorization": f"Bearer {reader}"}).json()
        assert stats["state"] == "active" and stats["queued"] == 0 and stats["delivered"] == 0
        metrics = http.get("/metrics").text
        assert (
            f'cohorthub_currents_queued_events{{connector_id="{cid}",kind="heap",workspace_id="{ws}"}} 0.0'
            in metrics
        )
        assert "0p3n5354m3" not in metrics
        assert http.delete(f"/currents/{cid}", headers=auth).status_code == 204
        assert http.get(f"/currents/{cid}/stats", headers=auth).status_code == 404


def test_bad_connectors_get_400_and_change_nothing(container: Container, live_server: LiveServer) -> None:
    _, key, _ = _keys(container)
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=live_server.url) as http:
        for body, text in [
            ({"kind": "s3", "url": "https://x.example"}, "Connector kind must be one of: http, heap"),
            (
                {"kind": "http", "url": "x.example"},
                "Connector URL must be an absolute http:// or https:// URL",
            ),
            (
                {"kind": "http", "url": "http://\x0f\xaai/braze"},
                "Connector URL must not contain spaces or control characters",
            ),
            ({"kind": "http", "url": "https://x.example:abc/"}, "Connector URL is not a valid URL"),
            ({"kind": "http", "url": "https://[::1/"}, "Connector URL is not a valid URL"),
            ({"kind": "http", "url": "https://x..example/"}, "Connector URL has an invalid host name"),
            (
                {"kind": "http", "url": "https://x.example", "batch_size": 0},
                "Batch size must be between 1 and 10000",
            ),
            (
                {"kind": "http", "url": "https://x.example", "events": " "},
                "Event selection must name at least one event type or glob",
            ),
        ]:
            response = http.post("/currents", json=body, headers=auth)
            assert (response.status_code, response.json()["message"]) == (400, text)
        assert http.get("/currents", headers=auth).json() == {"connectors": []}


def test_openapi_documents_the_currents_operations(live_server: LiveServer) -> None:
    paths = httpx.get(f"{live_server.url}/openapi.json").json()["paths"]
    assert {"post", "get"} <= set(paths["/currents"])
    assert "get" in paths["/currents/{id}/stats"] and "delete" in paths["/currents/{id}"]
