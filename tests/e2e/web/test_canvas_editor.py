"""The Canvas editor over HTTP: create a Canvas, change its entry, add, edit and remove steps; refused
definitions (a cycle, an unreachable step, bad Liquid) come back with the service's error next to the
form and nothing saved; a stale form is refused; a viewer and a request without CSRF token are refused."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx

from cohorthub.bootstrap import Container
from cohorthub.messaging import services as messaging
from cohorthub.segments import services as segments
from tests.e2e.web.conftest import World, session

MAIL = {
    "type": "message",
    "channel": "email",
    "from": "Acme <news@acme.io>",
    "subject": "Hi {{${first_name}}}",
    "body": "<p>Hello</p>",
}


def _stored(container: Container, world: World, program_id: str) -> dict[str, Any]:
    with container.uow(readonly=True) as uow:
        return messaging.get_program(uow=uow, workspace_id=world.workspace_id, program_id=program_id).spec


def _version(client: httpx.Client, program_id: str) -> str:
    found = re.search(
        r'name="version" value="([^"]+)"', client.get(f"/dashboard/campaigns/{program_id}").text
    )
    assert found is not None
    return found[1]


def _post(
    client: httpx.Client, csrf: str, program_id: str, path: str, data: dict[str, str]
) -> httpx.Response:
    form = {**data, "csrf_token": csrf, "version": _version(client, program_id)}
    return client.post(f"/dashboard/campaigns/{program_id}{path}", data=form)


def _create(client: httpx.Client, csrf: str, segment_id: str) -> str:
    made = client.post(
        "/dashboard/canvases",
        data={
            "csrf_token": csrf,
            "canvas_name": "Win back",
            "entry_type": "segment",
            "entry_segment_id": segment_id,
            "name": "Welcome",
            **MAIL,
        },
    )
    assert made.status_code == 303, made.text
    return made.headers["location"].rsplit("/", 1)[1]


def test_a_marketer_builds_a_canvas_step_by_step(world: World, container: Container) -> None:
    with container.uow() as uow:
        draft = segments.SegmentDraft(
            name="Spain", filter={"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}
        )
        spain = segments.create_segment(
            uow=uow, workspace_id=world.workspace_id, draft=draft, now=container.now()
        )
    with session(world, "marketer@acme.io") as (client, csrf):
        program_id = _create(client, csrf, spain.id)
        assert _stored(container, world, program_id)["entry"] == {"type": "segment", "segment_id": spain.id}
        wait = {
            "type": "delay",
            "name": "Two days",
            "delay_mode": "for",
            "delay_amount": "2",
            "delay_unit": "days",
            "next": "@position",
            "position": "welcome:next",
        }
        assert _post(client, csrf, program_id, "/steps", wait).status_code == 303
        decide = {
            "type": "decision_split",
            "name": "Bought?",
            "event": "purchase",
            "within_amount": "3",
            "within_unit": "days",
            "yes": "",
            "no": "@position",
            "position": "two-days:next",
        }
        assert _post(client, csrf, program_id, "/steps", decide).status_code == 303
        nudge = {**MAIL, "name": "Nudge", "subject": "Still there?", "next": "", "position": "bought:no"}
        assert _post(client, csrf, program_id, "/steps", nudge).status_code == 303
        split = {
            "type": "audience_split",
            "name": "Where",
            "path_count": "0",
            "path_name_0": "Spain",
            "path_segment_0": spain.id,
            "path_next_0": "nudge",
            "else": "",
            "position": "bought:no",
        }
        assert _post(client, csrf, program_id, "/steps", split).status_code == 303
        spec = _stored(container, world, program_id)
        assert [(s["id"], s["type"]) for s in spec["steps"]] == [
            ("welcome", "message"),
            ("two-days", "delay"),
            ("bought", "decision_split"),
            ("nudge", "message"),
            ("where", "audience_split"),
        ]
        by_id = {s["id"]: s for s in spec["steps"]}
        assert by_id["welcome"]["next"] == "two-days" and by_id["two-days"]["seconds"] == 172800
        assert by_id["bought"]["no"] == "where" and "yes" not in by_id["bought"]
        assert by_id["where"]["paths"] == [
            {
                "name": "Spain",
                "next": "nudge",
                "filter": {"type": "segment", "segment_id": spain.id, "op": "includes"},
            }
        ]

        edited = _post(client, csrf, program_id, "/steps/nudge", {**MAIL, "name": "Nudge", "subject": "Hola"})
        assert edited.status_code == 303
        assert _step(container, world, program_id, "nudge")["email"]["subject"] == "Hola"
        assert _post(client, csrf, program_id, "/steps/two-days/remove", {}).status_code == 303
        assert _step(container, world, program_id, "welcome")["next"] == "bought"
        with container.uow() as uow:
            ws, now = world.workspace_id, container.now()
            segments.set_archived(uow=uow, workspace_id=ws, segment_id=spain.id, archived=True, now=now)
        archived = client.get(f"/dashboard/campaigns/{program_id}")  # the entry's segment, by id
        assert archived.status_code == 200 and f"({spain.id})" in archived.text
        entry = {"entry_type": "event", "entry_event": "signed_up"}
        assert _post(client, csrf, program_id, "/entry", entry).status_code == 303
        assert _stored(container, world, program_id)["entry"] == {"type": "event", "event": "signed_up"}
        page = client.get(f"/dashboard/campaigns/{program_id}").text
        assert 'data-stat="nudge-sent">0<' in page and "Performs a custom event" in page


def _step(container: Container, world: World, program_id: str, step_id: str) -> dict[str, Any]:
    return next(s for s in _stored(container, world, program_id)["steps"] if s["id"] == step_id)


def test_refused_definitions_show_the_service_error_next_to_the_form(
    world: World, container: Container
) -> None:
    with container.uow() as uow:
        raw = {
            "name": "Loop",
            "entry": {"type": "api"},
            "steps": [
                {
                    "id": "a",
                    "type": "message",
                    "channel": "email",
                    "next": "b",
                    "email": {"from": "news@acme.io", "subject": "A", "body": "A"},
                },
                {
                    "id": "b",
                    "type": "decision_split",
                    "event": "buy",
                    "within_seconds": 60,
                    "yes": None,
                    "no": None,
                },
            ],
        }
        program_id = messaging.create_program(
            uow=uow, workspace_id=world.workspace_id, kind="canvas", raw=raw, now=container.now()
        ).id
    before = _stored(container, world, program_id)
    with session(world, "marketer@acme.io") as (client, csrf):
        cycle = _post(
            client,
            csrf,
            program_id,
            "/steps/b",
            {
                "type": "decision_split",
                "event": "buy",
                "within_amount": "1",
                "within_unit": "minutes",
                "yes": "a",
                "no": "",
            },
        )
        assert cycle.status_code == 400
        assert re.search(r'id="error-step-b">Not saved: steps: the steps form a cycle: a → b → a', cycle.text)
        assert '<option value="a" selected>' in cycle.text  # the form keeps what was typed
        liquid = _post(client, csrf, program_id, "/steps/a", {**MAIL, "subject": "{% if %}", "next": "b"})
        assert (
            liquid.status_code == 400
            and 'id="error-step-a">Not saved: steps[0].email.subject: line 1' in liquid.text
        )
        assert "{% if %}" in liquid.text
        orphan = _post(client, csrf, program_id, "/steps/a", {**MAIL, "next": ""})
        assert orphan.status_code == 400 and "unreachable from first_step: b" in orphan.text
        stale = client.post(
            f"/dashboard/campaigns/{program_id}/steps/a/remove", data={"csrf_token": csrf, "version": "1.0"}
        )
        assert stale.status_code == 409
        assert _post(client, csrf, program_id, "/entry", {"entry_type": "segment"}).status_code == 400
        bad = client.post(
            "/dashboard/canvases",
            data={"csrf_token": csrf, "canvas_name": "X", "entry_type": "api", **MAIL, "subject": "{{"},
        )
        assert bad.status_code == 400 and 'id="form-error"' in bad.text
    assert _stored(container, world, program_id) == before


def test_a_viewer_and_a_missing_csrf_token_change_no_canvas(world: World, container: Container) -> None:
    with container.uow() as uow:
        raw = {"name": "C", "entry": {"type": "api"}, "steps": [{"id": "a", "type": "delay", "seconds": 60}]}
        program = messaging.create_program(
            uow=uow, workspace_id=world.workspace_id, kind="canvas", raw=raw, now=container.now()
        )
    program_id, version = program.id, repr(program.updated_at)
    before = _stored(container, world, program_id)
    paths = ["/entry", "/settings", "/steps", "/steps/a", "/steps/a/remove"]
    form = {"entry_type": "api", "type": "delay", "delay_amount": "1", "name": "x", "position": "a:next"}
    with session(world, "viewer@acme.io") as (client, csrf):
        assert "Add a step" not in client.get(f"/dashboard/campaigns/{program_id}").text
        for path in paths:
            answer = client.post(
                f"/dashboard/campaigns/{program_id}{path}",
                data={**form, "csrf_token": csrf, "version": version},
            )
            assert answer.status_code == 403, path
        assert (
            client.post("/dashboard/canvases", data={**form, **MAIL, "csrf_token": csrf}).status_code == 403
        )
    with session(world, "admin@acme.io") as (client, csrf):
        for path in paths:
            answer = client.post(
                f"/dashboard/campaigns/{program_id}{path}", data={**form, "version": version}
            )
            assert answer.status_code == 403, path
    assert _stored(container, world, program_id) == before


def test_conversion_and_re_entry_are_edited_in_the_settings_form(world: World, container: Container) -> None:
    with container.uow() as uow:
        raw = {"name": "C", "entry": {"type": "api"}, "steps": [{"id": "a", "type": "delay", "seconds": 60}]}
        program_id = messaging.create_program(
            uow=uow, workspace_id=world.workspace_id, kind="canvas", raw=raw, now=container.now()
        ).id
    settings = {"name": "Win back", "exit_events": "upgraded", "conversion_kind": "purchase",
                "conversion_purchase": "pro-plan", "conversion_event": "ignored",
                "conversion_window_amount": "2", "conversion_window_unit": "days",
                "reentry": "1", "reentry_after_days": "30"}  # fmt: skip
    with session(world, "marketer@acme.io") as (client, csrf):
        assert _post(client, csrf, program_id, "/settings", settings).status_code == 303
        spec = _stored(container, world, program_id)
        assert spec["conversion"] == {"purchase": "pro-plan", "window_seconds": 172800}
        assert spec["reentry"] == {"allowed": True, "after_days": 30}
        page = client.get(f"/dashboard/campaigns/{program_id}").text  # the form shows what is stored
        assert '<option value="purchase" selected>' in page and 'value="pro-plan"' in page
        assert 'id="set-reentry" name="reentry" value="1" checked' in page and 'value="30"' in page
        with container.uow(readonly=True) as uow:
            details = messaging.get_program(uow=uow, workspace_id=world.workspace_id, program_id=program_id)
        assert details.name == "Win back"

        refused = _post(client, csrf, program_id, "/settings", {**settings, "reentry_after_days": "-1"})
        assert refused.status_code == 400 and "reentry.after_days" in refused.text
        assert 'value="-1"' in refused.text  # the form keeps what was typed
        empty = {**settings, "conversion_kind": "event", "conversion_event": ""}
        assert _post(client, csrf, program_id, "/settings", empty).status_code == 400
        assert _stored(container, world, program_id) == spec

        off = {"name": "Win back", "exit_events": "", "conversion_kind": "none", "reentry_after_days": "30"}
        assert _post(client, csrf, program_id, "/settings", off).status_code == 303
        spec = _stored(container, world, program_id)
        assert "conversion" not in spec and spec["reentry"] == {"allowed": False, "after_days": 0}


def test_an_event_entry_filter_is_edited_as_json(world: World, container: Container) -> None:
    with container.uow() as uow:
        raw = {"name": "C", "entry": {"type": "event", "event": "signed_up"},
               "steps": [{"id": "a", "type": "delay", "seconds": 60}]}  # fmt: skip
        program_id = messaging.create_program(
            uow=uow, workspace_id=world.workspace_id, kind="canvas", raw=raw, now=container.now()
        ).id
    spain = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}
    entry = {"entry_type": "event", "entry_event": "signed_up", "entry_filter": json.dumps(spain)}
    with session(world, "marketer@acme.io") as (client, csrf):
        assert _post(client, csrf, program_id, "/entry", entry).status_code == 303
        assert _stored(container, world, program_id)["entry"]["filter"] == spain
        page = client.get(f"/dashboard/campaigns/{program_id}").text
        shown = re.search(r'name="entry_filter"[^>]*>([^<]*)</textarea>', page)  # shown back for editing
        assert shown is not None and json.loads(html.unescape(shown[1])) == spain
        for bad, why in (("{", "entry.filter: not JSON"), ('{"type": "nope"}', "entry.filter")):
            refused = _post(client, csrf, program_id, "/entry", {**entry, "entry_filter": bad})
            assert refused.status_code == 400 and why in refused.text, refused.text
        assert _stored(container, world, program_id)["entry"]["filter"] == spain
        cleared = _post(client, csrf, program_id, "/entry", {**entry, "entry_filter": ""})
        assert cleared.status_code == 303 and "filter" not in _stored(container, world, program_id)["entry"]
        api = {"entry_type": "api", "entry_filter": json.dumps(spain)}  # only cohort and event entries
        assert _post(client, csrf, program_id, "/entry", api).status_code == 303
        assert _stored(container, world, program_id)["entry"] == {"type": "api"}
