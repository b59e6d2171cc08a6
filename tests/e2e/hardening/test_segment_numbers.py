"""Numbers in segment leaves are checked against their range at definition (400 naming the node)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.hardening.conftest import Hub

BIG = 2**63
EVENT = {"type": "event", "event": "played", "op": "at_least", "count": 1}
ARRAY = {"type": "custom_attribute", "attribute": "games", "data_type": "array", "op": "size_gt", "value": 1}
NUMBER = {"type": "custom_attribute", "attribute": "score", "data_type": "number", "op": "gt", "value": 1}
CREATED = {"type": "attribute", "attribute": "created_at", "op": "more_than_days_ago", "value": 1}

OUT_OF_RANGE: list[tuple[dict[str, Any], str]] = [
    ({**EVENT, "count": BIG}, "count"),
    ({**EVENT, "type": "purchase", "count": 2**64}, "count"),
    ({**EVENT, "within_days": 10**400}, "within_days"),
    ({**ARRAY, "value": 10**29}, "value"),
    ({**ARRAY, "op": "size_eq", "value": BIG}, "value"),
    ({**NUMBER, "value": 10**400}, "value"),
    ({**NUMBER, "value": -(10**400)}, "value"),
    ({**NUMBER, "value": 2**70}, "value"),
    ({**ARRAY, "op": "includes_value", "value": 2**64}, "value"),
    ({**CREATED, "value": 10**400}, "value"),
    ({**CREATED, "value": 3_650_001}, "value"),
]


def _users(hub: Hub) -> None:
    body = {
        "attributes": [{"external_id": "u1", "games": ["a", "b"], "score": 3}],
        "events": [{"external_id": "u1", "name": "played", "time": "2024-01-01T00:00:00Z"}],
    }
    assert hub.post("/users/track", body).status_code == 201


@pytest.mark.parametrize(("leaf", "field"), OUT_OF_RANGE)
def test_numbers_out_of_range_are_refused_at_definition(hub: Hub, leaf: dict[str, Any], field: str) -> None:
    _users(hub)
    response = hub.segment({"or": [leaf]})
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"filter.or[0].{field}: ")
    assert hub.get("/segments/list").json()["segments"] == []


@pytest.mark.parametrize(
    "leaf",
    [{**EVENT, "count": BIG - 1}, {**ARRAY, "value": BIG - 1}, {**NUMBER, "value": 1e308},
     {**NUMBER, "value": -BIG}, {**ARRAY, "op": "includes_value", "value": BIG - 1},
     {**CREATED, "value": 3_650_000}],
)  # fmt: skip
def test_numbers_at_the_edge_of_the_range_evaluate(hub: Hub, leaf: dict[str, Any]) -> None:
    _users(hub)
    created = hub.segment(leaf)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    for path in ("size", "members", "explain?external_id=u1"):
        response = hub.http.get(f"/segments/{sid}/{path}", headers=hub.auth)
        assert response.status_code == 200, (path, response.text)
