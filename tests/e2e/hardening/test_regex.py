"""A catastrophic regex cannot stall the server: RE2 evaluates it, over HTTP, on both stores."""

from __future__ import annotations

from tests.e2e.hardening.conftest import Hub

EVIL = {"type": "attribute", "attribute": "first_name", "op": "matches_regex", "value": "^(a+)+$"}


def test_catastrophic_pattern_answers_size_members_and_explain(hub: Hub) -> None:
    # Python's `re` would need ~2**40 steps for the first name below: the request would never end.
    people = [
        {"external_id": "slow", "first_name": "a" * 40 + "!"},
        {"external_id": "fast", "first_name": "aaa"},
    ]
    assert hub.post("/users/track", {"attributes": people}).status_code == 201
    sid = hub.segment(EVIL).json()["id"]
    assert hub.get(f"/segments/{sid}/size").json()["size"] == 1
    assert [m["external_id"] for m in hub.get(f"/segments/{sid}/members").json()["members"]] == ["fast"]
    assert hub.get(f"/segments/{sid}/explain", external_id="slow").json()["matched"] is False


def test_lookaround_is_refused_at_definition_with_the_path(hub: Hub) -> None:
    response = hub.segment({"and": [{**EVIL, "value": "^(?!admin)"}]})
    assert response.status_code == 400
    assert response.json()["message"].startswith("filter.and[0].value: is not a valid RE2 regex: ")
