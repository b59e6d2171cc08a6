"""An import that meets an uncommitted delete of a matched user waits for it and skips the user."""

from __future__ import annotations

import threading

import httpx
import pytest
from sqlalchemy import text

from cohorthub.bootstrap import Container
from tests.conftest import LiveServer
from tests.integration.cohorts.factories import add_user, make_tenant


def test_import_waits_for_a_concurrent_delete(container: Container, live_server: LiveServer) -> None:
    if container.engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs one writer at a time: an import never meets an uncommitted delete")
    tenant = make_tenant(container)
    gone = add_user(container, tenant.workspace_id, external_id="gone")
    add_user(container, tenant.workspace_id, external_id="stays")
    body = tenant.body(cohort_id="c1", cohort_changes=[{"user_ids": ["gone", "stays"]}])
    answers: list[httpx.Response] = []
    with container.engine.connect() as deleter:
        deleter.begin()
        deleter.execute(text("DELETE FROM users WHERE num = :num"), {"num": gone})
        sender = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{live_server.url}/partners/heap/cohorts/users", json=body)
            )
        )
        sender.start()
        sender.join(timeout=0.5)
        assert sender.is_alive(), "the import must wait for the delete's row lock"
        deleter.commit()
    sender.join(timeout=30)
    assert answers[0].status_code == 201, answers[0].text
    assert (answers[0].json()["identifiers_matched"], answers[0].json()["entered"]) == (1, 1)
    members = httpx.get(
        f"{live_server.url}/cohorts/heap/c1/members", headers={"Authorization": f"Bearer {tenant.rest_key}"}
    ).json()["members"]
    assert [m["external_id"] for m in members] == ["stays"]
    sizes = httpx.get(
        f"{live_server.url}/cohorts",
        params={"partner": "heap"},
        headers={"Authorization": f"Bearer {tenant.rest_key}"},
    ).json()["cohorts"]
    assert sizes[0]["size"] == 1
