"""The segments API over HTTP: Braze shapes, exact size, members, explain, errors with paths."""

from __future__ import annotations

import time
from typing import Any

import httpx

from cohorthub.bootstrap import Container
from cohorthub.workspaces import services as workspaces
from tests.conftest import LiveServer
from tests.integration.segments import factories as f

NOW = time.time()
TRIAL = {"type": "cohort", "partner": "heap", "cohort_id": "heap-123", "op": "includes"}
CONVERTED = {**TRIAL, "cohort_id": "heap-9"}
ES = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}
SEGMENT = {
    "name": "Trial abandoners in Spain",
    "tags": ["es"],
    "filter": {"and": [TRIAL, {"not": CONVERTED}, ES]},
}


def _setup(c: Container) -> tuple[str, str, dict[str, int]]:
    with c.uow() as uow:
        ws, key = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    with c.uow() as uow:
        nums = {f"u{i}": f.user(uow.conn, ws.id, now=NOW, external_id=f"u{i}", country=country)
                for i, country in enumerate(["ES", "ES", "ES", "FR"])}  # fmt: skip
        trial = f.cohort(uow.conn, ws.id, "heap-123", name="Trial abandoners", now=NOW)
        converted = f.cohort(uow.conn, ws.id, "heap-9", name="Converted", now=NOW)
        f.cohort_write(uow.conn, trial, entered=nums.values(), now=NOW)
        f.cohort_write(uow.conn, converted, entered=[nums["u2"]], now=NOW)
        uow.commit()
    return ws.id, key.key, nums


def _client(server: LiveServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"})


def test_marketer_flow_create_inspect_size_members_explain(
    container: Container, live_server: LiveServer
) -> None:
    _, key, _ = _setup(container)
    with _client(live_server, key) as http:
        created = http.post("/segments", json=SEGMENT)
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        listed = http.get("/segments/list").json()
        assert listed == {
            "segments": [
                {"id": sid, "name": SEGMENT["name"], "analytics_tracking_enabled": False, "tags": ["es"]}
            ],
            "message": "success",
        }
        details = http.get("/segments/details", params={"segment_id": sid}).json()
        assert details["message"] == "success"
        assert details["text_description"] == (
            "Heap Cohorts includes Trial abandoners AND NOT Heap Cohorts includes Converted"
            " AND country equals ES"
        )
        assert details["filter"]["and"][0]["cohort_name"] == "Trial abandoners"
        assert {"created_at", "updated_at", "description", "tags", "teams"} <= set(details)

        assert http.get(f"/segments/{sid}/size").json()["size"] == 2
        page = http.get(f"/segments/{sid}/members", params={"limit": 1}).json()
        assert [m["external_id"] for m in page["members"]] == ["u0"]
        rest = http.get(f"/segments/{sid}/members", params={"limit": 1, "cursor": page["next_cursor"]}).json()
        assert [m["external_id"] for m in rest["members"]] == ["u1"]
        assert rest["next_cursor"] is None
        exported = http.get(f"/segments/{sid}/members", params={"format": "csv"})
        assert exported.headers["content-type"].startswith("text/csv")
        assert [line.split(",")[1] for line in exported.text.splitlines()] == ["external_id", "u0", "u1"]

        why = http.get(f"/segments/{sid}/explain", params={"external_id": "u2"}).json()
        assert why["matched"] is False
        assert [c["matched"] for c in why["filter"]["children"]] == [True, False, True]

        history = http.get(f"/segments/{sid}/history").json()["sizes"]
        assert [p["size"] for p in history] == [2]


def test_changes_since_and_archive(container: Container, live_server: LiveServer) -> None:
    _, key, nums = _setup(container)
    with _client(live_server, key) as http:
        sid = http.post("/segments", json=SEGMENT).json()["id"]
        assert http.get(f"/segments/{sid}/size").json()["size"] == 2  # records the first snapshot
        with container.uow() as uow:
            f.change_user(uow.conn, nums["u3"], now=time.time(), country="ES")
            f.change_user(uow.conn, nums["u0"], now=time.time(), country="FR")
            uow.commit()
        changes = http.get(f"/segments/{sid}/changes", params={"since": "2100-01-01T00:00:00Z"}).json()
        assert [m["external_id"] for m in changes["entered"]] == ["u3"]
        assert [m["external_id"] for m in changes["left"]] == ["u0"]
        assert http.post(f"/segments/{sid}/archive").json()["archived"] is True
        assert http.get("/segments/list").json()["segments"] == []
        assert http.post(f"/segments/{sid}/unarchive").json()["archived"] is False


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["message"]


def test_bad_definitions_get_400_with_the_path_and_change_nothing(
    container: Container, live_server: LiveServer
) -> None:
    _, key, _ = _setup(container)
    bad: dict[str, Any] = {"and": [TRIAL, ES, {"not": {**ES, "value": 5}}]}
    with _client(live_server, key) as http:
        assert _error(http.post("/segments", json={**SEGMENT, "filter": bad})) == (
            400, "filter.and[2].not.value: must be a string",
        )  # fmt: skip
        unknown = {**SEGMENT, "filter": {"or": [ES, {**TRIAL, "cohort_id": "nope"}]}}
        assert _error(http.post("/segments", json=unknown)) == (
            400,
            "filter.or[1].cohort_id: no heap cohort with id nope",
        )
        assert _error(http.post("/segments", json={**SEGMENT, "colour": "red"})) == (
            400,
            "colour: unknown field",
        )
        a = http.post("/segments", json=SEGMENT).json()["id"]
        b = http.post(
            "/segments", json={**SEGMENT, "filter": {"type": "segment", "segment_id": a, "op": "includes"}}
        )
        loop = {
            **SEGMENT,
            "filter": {"and": [ES, {"type": "segment", "segment_id": b.json()["id"], "op": "excludes"}]},
        }
        status, message = _error(http.put(f"/segments/{a}", json=loop))
        assert (status, message.split(":")[0]) == (400, "filter.and[1].segment_id")
        assert "include each other" in message
        assert http.get("/segments/details", params={"segment_id": a}).json()["filter"]["and"][2] == ES
        assert http.get("/segments/nope/size").status_code == 404


def test_keys_need_the_endpoint_permission(container: Container, live_server: LiveServer) -> None:
    ws, _, _ = _setup(container)
    with container.uow() as uow:
        lister = workspaces.create_rest_key(
            uow=uow, workspace_id=ws, name="l", permissions=["segments.list"], now=NOW
        )
    with _client(live_server, lister.key) as http:
        assert http.get("/segments/list").status_code == 200
        assert http.post("/segments", json=SEGMENT).status_code == 403
    with _client(live_server, "wrong") as http:
        assert http.get("/segments/list").status_code == 401
    assert "/segments/{segment_id}/members" in httpx.get(f"{live_server.url}/openapi.json").json()["paths"]
