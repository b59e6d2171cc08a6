"""A size read after each kind of write answers what a from-scratch evaluation answers.

The server's indexes are warm and catch up by change stamps, tombstones and cohort versions; the
reference is a second process (container) with empty indexes and an empty membership cache, which
builds every leaf and loads every cohort from storage.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from cohorthub.bootstrap import Container, bootstrap
from cohorthub.config import Settings
from cohorthub.partners import services as partners
from cohorthub.segments import services
from cohorthub.workspaces import services as workspaces
from tests.conftest import LiveServer

NOW = time.time()
T1 = "2024-03-01T12:00:00Z"
A = {"type": "cohort", "partner": "heap", "cohort_id": "a", "op": "includes"}
B = {**A, "cohort_id": "b"}
PRO = {"type": "custom_attribute", "attribute": "plan", "data_type": "string", "op": "equals", "value": "pro"}
PLAYED = {"type": "event", "event": "played", "op": "at_least", "count": 2}
BOUGHT = {"type": "purchase", "product_id": "gold", "op": "at_least", "count": 1}
FILTER = {"or": [{"and": [A, {"not": B}, PRO]}, PLAYED, BOUGHT]}


def _fresh_members(settings: Settings, ws: str, sid: str) -> set[int]:
    """The members by a from-scratch evaluation: a new container, nothing cached."""
    other = bootstrap(settings, run_migrations=False)
    try:
        with other.uow(readonly=True) as uow:
            _, members = services.evaluate_segment(
                uow=uow, indexes=other.segments, membership=other.membership,
                workspace_id=ws, segment_id=sid, now=time.time(),
            )  # fmt: skip
        return set(members)
    finally:
        other.close()


def _served_members(container: Container, http: httpx.Client, ws: str, sid: str) -> set[int]:
    """The size the server answers, checked against the members its warm indexes hold."""
    size = http.get(f"/segments/{sid}/size")
    assert size.status_code == 200, size.text
    with container.uow(readonly=True) as uow:
        _, members = services.evaluate_segment(
            uow=uow, indexes=container.segments, membership=container.membership,
            workspace_id=ws, segment_id=sid, now=time.time(),
        )  # fmt: skip
    assert size.json()["size"] == len(members)
    return set(members)


def test_each_kind_of_write_is_caught_up_exactly(
    container: Container, live_server: LiveServer, settings: Settings
) -> None:
    with container.uow() as uow:
        ws, key = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    with container.uow() as uow:
        partner_key = partners.issue_partner_key(uow=uow, partner="heap", now=NOW)
    with container.uow() as uow:
        secret = partners.enable_partner(uow=uow, workspace_id=ws.id, partner="heap", now=NOW).data_import_key
    keys = {"partner_api_key": partner_key, "client_secret": secret}
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {key.key}"}) as http:

        def post(path: str, body: dict[str, Any]) -> None:
            response = http.post(path, json=body)
            assert response.status_code < 300, response.text

        def track(**body: Any) -> None:
            post("/users/track", body)

        def cohort(cohort_id: str, ids: list[str], *, remove: bool = False, devices: bool = False) -> None:
            change = {"device_ids" if devices else "user_ids": ids, "should_remove": remove}
            post("/partners/heap/cohorts/users", {**keys, "cohort_id": cohort_id, "cohort_changes": [change]})

        for cohort_id in "ab":
            named = {**keys, "cohort_id": cohort_id, "name": cohort_id, "created_at": T1}
            post("/partners/heap/cohorts", named)
        track(attributes=[{"external_id": f"u{i}", "plan": "pro" if i % 2 else "free"} for i in range(8)])
        cohort("a", [f"u{i}" for i in range(6)])
        sid = http.post("/segments", json={"name": "mixed", "filter": FILTER}).json()["id"]

        def agrees(step: str, expected: set[str]) -> None:
            served = _served_members(container, http, ws.id, sid)
            assert served == _fresh_members(settings, ws.id, sid), step
            listed = http.get(f"/segments/{sid}/members", params={"format": "csv"}).text.splitlines()
            assert {line.split(",")[1] for line in listed[1:]} == expected, step

        agrees("warm", {"u1", "u3", "u5"})  # in a, not in b, plan pro
        track(attributes=[{"external_id": "u0", "plan": "pro"}, {"external_id": "u1", "plan": "free"}])
        agrees("track: attributes", {"u0", "u3", "u5"})
        cohort("b", ["u3", "u5"])
        agrees("import: enter", {"u0"})
        cohort("a", ["u0"], remove=True)
        agrees("import: leave", set())
        track(events=[{"external_id": "u6", "name": "played", "time": T1}] * 2)
        agrees("events", {"u6"})
        gold = {"product_id": "gold", "currency": "USD", "price": 1, "time": T1}
        track(purchases=[{"external_id": "u7", **gold}])
        agrees("purchase", {"u6", "u7"})
        track(attributes=[{"external_id": "u9", "plan": "pro"}])  # a new user, in no cohort yet
        agrees("new user", {"u6", "u7"})
        cohort("a", ["u9"])
        agrees("new user, then import", {"u6", "u7", "u9"})
        track(events=[{"device_id": "dev-1", "name": "played", "time": T1}] * 2)  # anonymous
        agrees("anonymous user", {"u6", "u7", "u9", ""})
        track(attributes=[{"external_id": "u8", "device_id": "dev-1", "plan": "pro"}])  # merges dev-1 into u8
        agrees("merge", {"u6", "u7", "u8", "u9"})
        post("/users/delete", {"external_ids": ["u0", "u6"]})
        agrees("delete", {"u7", "u8", "u9"})


def test_a_definition_changed_by_another_process_is_read_again(
    container: Container, live_server: LiveServer, settings: Settings
) -> None:
    with container.uow() as uow:
        ws, key = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {key.key}"}) as http:
        http.post("/users/track", json={"attributes": [{"external_id": f"u{i}", "n": i} for i in range(6)]})

        def at_least(n: int) -> dict[str, Any]:
            return {"type": "custom_attribute", "attribute": "n", "data_type": "number", "op": "ge",
                    "value": n}  # fmt: skip

        def create(name: str, raw: dict[str, Any]) -> str:
            return str(http.post("/segments", json={"name": name, "filter": raw}).json()["id"])

        inner = create("inner", at_least(2))
        uses = {"type": "segment", "segment_id": inner, "op": "includes"}
        outer = create("outer", {"and": [uses, at_least(1)]})

        def size() -> int:
            answer = http.get(f"/segments/{outer}/size")
            assert answer.status_code == 200, answer.text
            assert answer.json()["size"] == len(_fresh_members(settings, ws.id, outer))
            return int(answer.json()["size"])

        assert size() == 4
        other = bootstrap(settings, run_migrations=False)
        try:
            for sid, name, raw, expected in [
                (inner, "inner", at_least(4), 2),  # a segment the read uses
                (outer, "outer", {"and": [uses, at_least(5)]}, 1),  # the segment read
            ]:
                with other.uow() as uow:
                    draft = services.SegmentDraft(name=name, filter=raw)
                    services.update_segment(uow=uow, workspace_id=ws.id, segment_id=sid, draft=draft, now=NOW)
                assert size() == expected
        finally:
            other.close()
        renamed = http.put(f"/segments/{outer}", json={"name": "renamed", "filter": at_least(0)})
        assert renamed.status_code == 200, renamed.text
        assert size() == 6
