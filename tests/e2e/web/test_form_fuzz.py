"""Garbage in every dashboard form and query: never a 5xx, never a hang.

The dashboard's forms are not in `/openapi.json`, so schemathesis does not reach them. Each run posts
a fixed-seed sequence of forms whose fields (names from every dashboard form) take hostile values: NUL,
non-ASCII digits, huge numbers, NaN and infinity, far-off times, broken JSON, very long text. `FUZZ_FORMS`
raises the count for a longer run by hand.
"""

from __future__ import annotations

import os
import random
import re

import httpx

from cohorthub.bootstrap import Container
from cohorthub.messaging import services as messaging
from cohorthub.segments import services as segments
from tests.e2e.web.conftest import World, session

ROUNDS = int(os.environ.get("FUZZ_FORMS", "300"))
NASTY = [
    "", "0", "-1", "1e400", "nan", "inf", "²", "\x00", "a" * 5000, "9" * 40, "{", "[]", "null", "é", " ",
    '{"type":"nope"}', '{"and":[]}', '{"type":"attribute","attribute":"country","op":"equals","value":"ES"}',
    "@position", "first", "a:next", "b:yes", "x:path:99", "b:path:²", "1.5", "true", "2026-13-40T99:99",
    "9999-12-31T23:59", "0001-01-01T00:00", "heap|c1", "email", "webhook", "days", "minutes", "until",
    "audience_split", "decision_split", "message", "delay", "event", "purchase", "cohort", "segment", "api",
    "schedule", "http://127.0.0.1:9/", "news@acme.io", "{{ ${first_name}", "{% if %}",
]  # fmt: skip
FIELDS = [
    "name", "type", "position", "id", "next", "else", "yes", "no", "event", "purchase", "until", "delay_mode",
    "delay_amount", "delay_unit", "within_amount", "within_unit", "channel", "from", "subject", "body", "url",
    "method", "headers", "webhook_body", "path_count", "path_name_0", "path_segment_0", "path_filter_0",
    "path_next_0", "path_remove_0", "entry_type", "cohort", "entry_segment_id", "entry_event",
    "entry_purchase", "entry_time", "entry_filter", "exit_events", "leaves_audience", "conversion_kind",
    "conversion_event", "conversion_purchase", "conversion_window_amount", "conversion_window_unit",
    "reentry", "reentry_after_days",
    "canvas_name", "segment_id", "time", "address", "external_id", "kind", "token", "events", "role", "email",
    "password", "permissions", "language", "workspace_id", "since", "dead_letters",
]  # fmt: skip
QUERY_KEYS = ["by", "q", "before", "external_id", "count", "next"]


def test_no_dashboard_form_or_query_answers_5xx_or_hangs(world: World, container: Container) -> None:
    spain = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}
    mail = {"from": "news@acme.io", "subject": "Hi", "body": "<p>Hi</p>"}
    canvas_raw = {"name": "K", "entry": {"type": "api"}, "steps": [
        {"id": "a", "type": "delay", "seconds": 60, "next": "b"},
        {"id": "b", "type": "decision_split", "event": "x", "within_seconds": 60}]}  # fmt: skip
    ws, now = world.workspace_id, container.now()
    with container.uow() as uow:
        draft = segments.SegmentDraft(name="Spain", filter=spain)
        seg = segments.create_segment(uow=uow, workspace_id=ws, draft=draft, now=now).id
    with container.uow() as uow:
        campaign_raw = {"name": "C", "channel": "email", "email": mail, "audience": {"segment_ids": [seg]},
                        "delivery": {"type": "api"}}  # fmt: skip
        camp = messaging.create_program(
            uow=uow, workspace_id=ws, kind="campaign", raw=campaign_raw, now=now
        ).id
    with container.uow() as uow:
        canv = messaging.create_program(uow=uow, workspace_id=ws, kind="canvas", raw=canvas_raw, now=now).id
    posts = [
        "/campaigns", f"/campaigns/{camp}/test-send", f"/campaigns/{camp}/launch", f"/campaigns/{canv}/pause",
        "/canvases", f"/campaigns/{canv}/entry", f"/campaigns/{canv}/settings", f"/campaigns/{canv}/steps",
        f"/campaigns/{canv}/steps/a", f"/campaigns/{canv}/steps/b", f"/campaigns/{canv}/steps/a/remove",
        "/currents", "/segments/preview", "/segments/save", f"/segments/{seg}/archive", "/settings/keys",
        "/settings/accounts", "/language", "/workspace", "/partners/heap/enable",
    ]  # fmt: skip
    gets = ["/users", f"/segments/{seg}/members", f"/segments/{seg}/explain", f"/campaigns/{camp}/preview",
            f"/campaigns/{canv}", "/users/1/messages", "/users/x/messages"]  # fmt: skip
    rng = random.Random(20261201)
    failures: list[str] = []
    with session(world, "admin@acme.io") as (client, csrf):
        client.timeout = httpx.Timeout(10.0)  # a hang fails the run instead of stalling it
        for _ in range(ROUNDS):
            page = client.get(f"/dashboard/campaigns/{canv}").text
            version = re.search(r'name="version" value="([^"]+)"', page)
            form = {f: rng.choice(NASTY) for f in rng.sample(FIELDS, rng.randint(1, 20))}
            form["csrf_token"] = csrf
            if version and rng.random() < 0.9:
                form["version"] = version[1]
            path = "/dashboard" + rng.choice(posts)
            answer = client.post(path, data=form)
            if answer.status_code >= 500:
                failures.append(f"POST {path} {answer.status_code} {form!r:.300}")
            query = {k: rng.choice(NASTY) for k in rng.sample(QUERY_KEYS, rng.randint(0, 3))}
            path = "/dashboard" + rng.choice(gets)
            answer = client.get(path, params=query)
            if answer.status_code >= 500:
                failures.append(f"GET {path} {answer.status_code} {query!r:.300}")
    assert failures == []
