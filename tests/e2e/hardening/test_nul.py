"""NUL characters are a clear 400 everywhere, identically on SQLite and PostgreSQL, and store nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from cohorthub.bootstrap import Container
from cohorthub.cohorts.errors import COHORT_CHANGES_TEXT, COHORT_ID_TEXT, NAME_TEXT
from cohorthub.store.segments import segments
from cohorthub.store.tables import cohorts
from tests.conftest import error_body
from tests.e2e.hardening.conftest import Hub

NUL = "a\x00b"
COUNTRY = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}
COHORT = {"type": "cohort", "partner": "heap", "cohort_id": "c1", "op": "includes"}
IDENTITY = {"type": "identity", "field": "external_id", "op": "exists"}


def _rows(container: Container, table: Any) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize(
    ("fields", "message", "detail"),
    [({"cohort_id": NUL}, COHORT_ID_TEXT, "`cohort_id` must not contain NUL characters"),
     ({"name": NUL}, NAME_TEXT, "`name` must not contain NUL characters")],
)  # fmt: skip
def test_cohort_name_and_id(
    hub: Hub, container: Container, fields: dict[str, str], message: str, detail: str
) -> None:
    body = {"cohort_id": "c1", "name": "C", "created_at": "2024-01-01", **fields}
    response = hub.partner("/cohorts", **body)
    assert (response.status_code, error_body(response)) == (400, {"message": message, "errors": [detail]})
    assert _rows(container, cohorts) == 0


@pytest.mark.parametrize(
    ("change", "path"),
    [({"user_ids": ["u1", NUL]}, "cohort_changes[0].user_ids[1]"),
     ({"device_ids": [NUL]}, "cohort_changes[0].device_ids[0]"),
     ({"aliases": [{"alias_label": "email", "alias_name": NUL}]}, "cohort_changes[0].aliases[0].alias_name")],
)  # fmt: skip
def test_imported_identifiers(hub: Hub, container: Container, change: dict[str, Any], path: str) -> None:
    response = hub.partner("/cohorts/users", cohort_id="c1", cohort_changes=[change])
    assert response.status_code == 400
    assert response.json()["errors"] == [f"`{path}` must not contain NUL characters"]
    assert response.json()["message"] != COHORT_CHANGES_TEXT
    assert _rows(container, cohorts) == 0


@pytest.mark.parametrize(
    ("body", "path"),
    [({"name": NUL}, "name"), ({"description": NUL}, "description"), ({"tags": ["x", NUL]}, "tags[1]"),
     ({"filter": {**COUNTRY, "value": NUL}}, "filter.value"),
     ({"filter": {**COHORT, "cohort_id": NUL}}, "filter.cohort_id"),
     ({"filter": {"type": "event", "event": NUL, "op": "at_least", "count": 1}}, "filter.event")],
)  # fmt: skip
def test_segment_fields(hub: Hub, container: Container, body: dict[str, Any], path: str) -> None:
    response = hub.post("/segments", {"name": "S", "filter": IDENTITY, **body})
    assert response.status_code == 400
    assert response.json()["message"] == f"{path}: must not contain NUL characters"
    assert _rows(container, segments) == 0


def test_path_and_query_parameters(hub: Hub) -> None:
    sid = hub.segment(IDENTITY).json()["id"]
    for path in ["/cohorts/heap/a%00b/members", f"/segments/{sid}%00/size", "/currents/x%00y"]:
        response = hub.http.get(path, headers=hub.auth)
        assert (response.status_code, response.json()["message"]) == (
            400, "The path must not contain NUL characters"), path  # fmt: skip
    for path, name in [("/cohorts", "partner"), ("/segments/details", "segment_id"),
                       (f"/segments/{sid}/explain", "external_id")]:  # fmt: skip
        response = hub.get(path, **{name: NUL})
        assert response.status_code == 400, path
        assert response.json()["message"] == f"Query parameter `{name}` must not contain NUL characters"


def test_users_api_answers_the_same_way(hub: Hub) -> None:
    response = hub.post("/users/delete", {"external_ids": [NUL]})
    assert response.status_code == 400
    assert "must not contain NUL characters" in response.text


@pytest.mark.parametrize(
    ("field", "value"),
    [("url", "http://127.0.0.1:9/in\x00"), ("url", "http://a\x00b/"), ("token", NUL), ("events", NUL)],
)
def test_currents_connector_fields(hub: Hub, field: str, value: str) -> None:
    body = {"kind": "http", "url": "http://127.0.0.1:9/in", field: value}
    response = hub.post("/currents", body)
    assert response.status_code == 400, response.text
    assert hub.get("/currents").json() == {"connectors": []}
