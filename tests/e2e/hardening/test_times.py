"""Times that cannot be written back as ISO-8601 are refused at input; stored ones never break a read."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from cohorthub.bootstrap import Container
from cohorthub.cohorts.errors import CREATED_AT_TEXT
from cohorthub.store.tables import cohorts
from tests.e2e.hardening.conftest import Hub

UNSHOWABLE = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]


@pytest.mark.parametrize("moment", UNSHOWABLE)
def test_cohort_created_at_past_year_9999_is_refused(hub: Hub, moment: str) -> None:
    response = hub.partner("/cohorts", cohort_id="c1", name="C", created_at=moment)
    assert response.status_code == 400
    assert response.json()["message"] == CREATED_AT_TEXT
    assert hub.get("/cohorts").json() == {"cohorts": []}


def test_stored_times_out_of_range_are_shown_clamped(hub: Hub, container: Container) -> None:
    assert hub.partner("/cohorts", cohort_id="c1", name="C", created_at="2024-01-01").status_code == 201
    with container.engine.begin() as conn:
        conn.execute(update(cohorts).values(partner_created_at=253_402_351_199.0, last_import_at=-1e12))
    response = hub.get("/cohorts")
    assert response.status_code == 200, response.text
    [cohort] = response.json()["cohorts"]
    assert cohort["created_at"] == "9999-12-31T23:59:59.000Z"
    assert cohort["diagnostics"]["last_import_at"] == "0001-01-01T00:00:00.000Z"


@pytest.mark.parametrize("moment", UNSHOWABLE)
def test_segment_times_past_year_9999_are_refused(hub: Hub, moment: str) -> None:
    leaf = {"type": "event", "event": "signed_up", "op": "first_after", "time": moment}
    response = hub.segment({"and": [leaf]})
    assert response.status_code == 400
    assert response.json()["message"].startswith("filter.and[0].time: ")
    attribute = {"type": "attribute", "attribute": "created_at", "op": "before", "value": moment}
    assert hub.segment(attribute).json()["message"].startswith("filter.value: ")
    assert hub.get("/segments/list").json()["segments"] == []


@pytest.mark.parametrize("moment", UNSHOWABLE)
def test_changes_since_past_year_9999_is_refused(hub: Hub, moment: str) -> None:
    sid = hub.segment({"type": "identity", "field": "external_id", "op": "exists"}).json()["id"]
    for path in (f"/segments/{sid}/changes", f"/segments/{sid}/history"):
        response = hub.get(path, since=moment)
        assert response.status_code == 400, response.text
        assert "`since`" in response.json()["message"]
