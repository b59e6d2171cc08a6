"""Integer query parameters: one parser, 400 naming the parameter for any non-ASCII-digit value."""

from __future__ import annotations

import pytest

from tests.e2e.hardening.conftest import Hub

COHORT = {"type": "cohort", "partner": "heap", "cohort_id": "c1", "op": "includes"}
BAD_NUMBERS = ["\u00b2", "\u0663", "-1", "1.5", "9" * 5000, "99999999999999999999"]


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_bad_integers_get_400_naming_the_parameter(hub: Hub, value: str) -> None:
    assert hub.partner("/cohorts", cohort_id="c1", name="C", created_at="2024-01-01").status_code == 201
    sid = hub.segment(COHORT).json()["id"]
    calls = [
        ("/segments/list", "page"),
        (f"/segments/{sid}/members", "limit"),
        (f"/segments/{sid}/members", "cursor"),
        (f"/segments/{sid}/changes", "limit"),
        ("/cohorts/heap/c1/members", "limit"),
        ("/cohorts/heap/c1/members", "cursor"),
    ]
    for path, name in calls:
        params = {name: value, "since": "2024-01-01"}
        response = hub.get(path, **params)
        assert response.status_code == 400, (path, name, response.text)
        assert f"`{name}`" in response.json()["message"]


def test_ascii_integers_still_work(hub: Hub) -> None:
    assert hub.get("/segments/list", page="0").status_code == 200
    assert hub.partner("/cohorts", cohort_id="c1", name="C", created_at="2024-01-01").status_code == 201
    assert hub.get("/cohorts/heap/c1/members", limit="1000", cursor="7").status_code == 200


def test_cursors_past_any_user_number_get_400(hub: Hub) -> None:
    assert hub.partner("/cohorts", cohort_id="c1", name="C", created_at="2024-01-01").status_code == 201
    sid = hub.segment(COHORT).json()["id"]
    for path in ("/cohorts/heap/c1/members", f"/segments/{sid}/members"):
        response = hub.get(path, cursor=str(2**32))
        assert response.status_code == 400, response.text
        assert "`cursor`" in response.json()["message"]
        assert hub.get(path, cursor=str(2**32 - 1)).status_code == 200
