"""The durable scheduler and Canvas steps through the real stores, on a clock the test moves."""

from __future__ import annotations

import time
from typing import Any

import pytest

from cohorthub.bootstrap import Container
from cohorthub.messaging import services, triggers
from cohorthub.messaging.errors import InvalidProgram
from cohorthub.messaging.ports import MemoryEmailTransport, MemoryWebhookTransport
from cohorthub.runtimes import Messaging, messaging_runtime
from cohorthub.segments import services as segments
from tests.integration.segments import factories as f

T0 = float(int(time.time()))
MAIL = {"from": "news@shop.test", "subject": "S {{canvas_entry_properties.${n}}}", "body": "<p>x</p>"}


class Clock:
    """A clock the test sets."""

    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def _setup(c: Container) -> tuple[str, Clock, Messaging, MemoryEmailTransport, MemoryWebhookTransport]:
    clock = Clock()
    c.now = clock
    with c.uow() as uow:
        ws = f.workspace(uow.conn, now=T0)
        f.user(uow.conn, ws, now=T0, external_id="es", email="es@example.com", country="ES")
        f.user(uow.conn, ws, now=T0, external_id="fr", email="fr@example.com", country="FR")
        uow.commit()
    email, hooks = MemoryEmailTransport(), MemoryWebhookTransport()
    return ws, clock, messaging_runtime(c, email=email, webhook=hooks), email, hooks


def _create(c: Container, ws: str, kind: str, body: dict[str, Any]) -> str:
    with c.uow() as uow:
        program = services.create_program(uow=uow, workspace_id=ws, kind=kind, raw=body, now=c.now())
    with c.uow() as uow:
        services.launch_program(uow=uow, workspace_id=ws, program_id=program.id, now=c.now())
    return program.id


def test_scheduled_recurring_survives_restart_and_skips_what_is_too_late(container: Container) -> None:
    ws, clock, first, email, hooks = _setup(container)
    delivery = {"type": "recurring", "time": T0 + 100, "every": "daily"}
    cid = _create(
        container, ws, "campaign", {"name": "R", "channel": "email", "email": MAIL, "delivery": delivery}
    )
    first.worker.round()
    assert email.sent == []  # not due yet
    # the worker that was running is gone; a new process (new owner) finds the durable job
    clock.t = T0 + 101
    second = messaging_runtime(container, email=email, webhook=hooks)
    second.worker.round()
    assert sorted(m.to for m in email.sent) == ["es@example.com", "fr@example.com"]
    with container.uow(readonly=True) as uow:
        jobs = uow.messaging.jobs.list(cid)
    assert [j["state"] for j in jobs] == ["pending", "done"] and jobs[0]["due_at"] == T0 + 100 + 86400
    clock.t = T0 + 100 + 86400 + 2 * 3600  # the server was down past the next send and the max lateness
    second.worker.round()
    with container.uow(readonly=True) as uow:
        jobs = uow.messaging.jobs.list(cid)
    assert len(email.sent) == 2 and jobs[1]["note"].startswith("missed")
    assert jobs[0]["due_at"] == T0 + 100 + 2 * 86400  # the next one is queued once


def test_a_dead_workers_job_is_taken_over_after_its_lease(container: Container) -> None:
    ws, clock, first, email, _ = _setup(container)
    _create(
        container,
        ws,
        "campaign",
        {"name": "N", "channel": "email", "email": MAIL, "delivery": {"type": "now"}},
    )
    assert len(first.jobs.claim()) == 1  # leased, then the worker dies before running it
    second = messaging_runtime(container, email=email, webhook=MemoryWebhookTransport())
    second.worker.round()
    assert email.sent == []
    clock.t += container.settings.messaging_lease_seconds + 1
    second.worker.round()
    assert len(email.sent) == 2


CANVAS: dict[str, Any] = {
    "name": "Journey",
    "entry": {"type": "api"},
    "steps": [
        {"id": "hello", "type": "message", "channel": "email", "email": MAIL, "next": "wait"},
        {"id": "wait", "type": "delay", "seconds": 60, "next": "where"},
        {"id": "where", "type": "audience_split", "else": "decide",
         "paths": [{"name": "Spain", "next": "hook",
                    "filter": {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}}]},
        {"id": "hook", "type": "message", "channel": "webhook", "webhook": {"url": "https://h.test/{{${user_id}}}"}},
        {"id": "decide", "type": "decision_split", "event": "bought", "within_seconds": 100, "yes": "thanks"},
        {"id": "thanks", "type": "message", "channel": "email", "email": MAIL},
    ],
    "exit": {"events": ["quit"]},
}  # fmt: skip


def test_canvas_steps_delay_splits_reentry(container: Container) -> None:
    ws, clock, runtime, email, hooks = _setup(container)
    canvas_id = _create(container, ws, "canvas", CANVAS)
    body = {"canvas_id": canvas_id, "canvas_entry_properties": {"n": "1"},
            "recipients": [{"external_user_id": "es"}, {"external_user_id": "fr"}]}  # fmt: skip
    with container.uow() as uow:
        assert (
            triggers.trigger_canvas(uow=uow, workspace_id=ws, body=body, now=clock())["message"] == "success"
        )
    runtime.worker.round()
    assert sorted(m.to for m in email.sent) == ["es@example.com", "fr@example.com"]
    assert b"Subject: S 1" in email.sent[0].data
    with container.uow() as uow:  # re-entry is not allowed: a second trigger enters nobody
        triggers.trigger_canvas(uow=uow, workspace_id=ws, body={**body, "context": {"n": "2"}}, now=clock())
    clock.t += 61
    runtime.worker.round()
    assert [h.url for h in hooks.sent] == ["https://h.test/es"]  # ES took the split's path
    with container.uow() as uow:  # fr performs the decision's event within the window
        fr = uow.messaging.facts.nums_by_external_ids(ws, ["fr"])["fr"]
        f.event(uow.conn, ws, fr, "bought", at=clock() + 5)
        uow.commit()
    clock.t += 101
    runtime.worker.round()
    assert sorted(m.to for m in email.sent) == ["es@example.com", "fr@example.com", "fr@example.com"]
    with container.uow(readonly=True) as uow:
        stats = services.program_stats(uow=uow, workspace_id=ws, program_id=canvas_id)
    assert stats["entries"] == {"entered": 2, "active": 0, "done": 2, "exited": 0, "converted": 0}
    assert stats["steps"]["thanks"]["delivered"] == 1 and stats["steps"]["hook"]["delivered"] == 1


def test_segment_entry_enters_only_users_who_enter_after_launch(container: Container) -> None:
    ws, clock, runtime, email, _ = _setup(container)
    spain = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}
    with container.uow() as uow:
        segment = segments.create_segment(
            uow=uow, workspace_id=ws, draft=segments.SegmentDraft(name="Spain", filter=spain), now=clock()
        )
    steps = [{"id": "hi", "type": "message", "channel": "email", "email": MAIL}]
    _create(container, ws, "canvas", {"name": "S", "entry": {"type": "segment", "segment_id": segment.id},
                                      "steps": steps})  # fmt: skip
    runtime.worker.round()  # records who is in the segment at launch
    with container.uow() as uow:
        f.user(uow.conn, ws, now=clock() + 1, external_id="new", email="new@example.com", country="ES")
        uow.commit()
    clock.t += 6
    runtime.worker.round()
    runtime.worker.round()
    assert [m.to for m in email.sent] == ["new@example.com"]


def test_rate_limit_and_quiet_hours(container: Container) -> None:
    ws, clock, runtime, email, _ = _setup(container)
    clock.t = T0 - T0 % 86400 + 12 * 3600  # noon UTC
    body = {
        "name": "Slow",
        "channel": "email",
        "email": MAIL,
        "delivery": {"type": "now"},
        "rate_limit_per_minute": 1,
    }
    _create(container, ws, "campaign", body)
    runtime.worker.round()
    assert len(email.sent) == 1
    clock.t += 60
    runtime.worker.round()
    assert len(email.sent) == 2
    quiet = {**body, "name": "Quiet", "rate_limit_per_minute": None, "quiet_hours": {"start": 11, "end": 13}}
    _create(container, ws, "campaign", quiet)
    runtime.worker.round()
    assert len(email.sent) == 2  # deferred to the end of the quiet hours
    clock.t = T0 - T0 % 86400 + 13 * 3600 + 1
    runtime.worker.round()
    assert len(email.sent) == 4


def test_workers_skip_jobs_another_worker_holds(container: Container) -> None:
    if container.engine.dialect.name != "postgresql":
        return  # SQLite serializes writers: there is nothing to skip
    ws, clock, _, _, _ = _setup(container)
    for name in ("A", "B"):
        _create(
            container,
            ws,
            "campaign",
            {"name": name, "channel": "email", "email": MAIL, "delivery": {"type": "now"}},
        )
    second = messaging_runtime(container, email=MemoryEmailTransport(), webhook=MemoryWebhookTransport())
    with container.uow() as uow:  # a worker mid-claim: its transaction holds the first due job
        held = uow.messaging.jobs.claim(now=clock(), owner="other", lease_until=clock() + 60, limit=1)
        taken = second.jobs.claim(limit=5)
        assert len(held) == len(taken) == 1 and held[0].id != taken[0].id


def test_local_time_delivery_waits_for_each_users_zone(container: Container) -> None:
    ws, clock, runtime, email, _ = _setup(container)
    with container.uow() as uow:
        f.change_user(uow.conn, uow.messaging.facts.nums_by_external_ids(ws, ["fr"])["fr"], now=clock(),
                      time_zone="America/New_York")  # fmt: skip
        uow.commit()
    at = T0 - T0 % 86400 + 86400 + 9 * 3600  # 09:00 tomorrow, read in each user's zone
    delivery = {"type": "scheduled", "time": at, "in_local_time": True}
    _create(container, ws, "campaign", {"name": "L", "channel": "email", "email": MAIL, "delivery": delivery})
    clock.t = at
    runtime.worker.round()
    assert [m.to for m in email.sent] == ["es@example.com"]  # no zone: UTC
    clock.t = at + 5 * 3600  # 09:00 in New York (UTC-5 in winter, UTC-4 in summer)
    runtime.worker.round()
    clock.t = at + 5 * 3600 + 1
    runtime.worker.round()
    assert sorted(m.to for m in email.sent) == ["es@example.com", "fr@example.com"]


def test_purchases_enter_decide_and_exit_canvases(container: Container) -> None:
    ws, clock, runtime, email, _ = _setup(container)
    mail = {**MAIL, "subject": "hello"}
    thanks = {**MAIL, "subject": "thanks"}
    buyers = {"name": "Buyers", "entry": {"type": "event", "purchase": "sku-1"}, "steps": [
        {"id": "hello", "type": "message", "channel": "email", "email": mail, "next": "decide"},
        {"id": "decide", "type": "decision_split", "purchase": "*", "within_seconds": 100, "yes": "thanks"},
        {"id": "thanks", "type": "message", "channel": "email", "email": thanks},
    ]}  # fmt: skip
    _create(container, ws, "canvas", buyers)
    quitters = {"name": "Q", "entry": {"type": "event", "event": "signed_up"},
                "exit": {"purchases": ["refund"]},
                "steps": [{"id": "wait", "type": "delay", "seconds": 60, "next": "later"},
                          {"id": "later", "type": "message", "channel": "email", "email": mail}]}  # fmt: skip
    quit_id = _create(container, ws, "canvas", quitters)
    runtime.worker.round()  # the scanners start after what is already there
    with container.uow() as uow:
        nums = uow.messaging.facts.nums_by_external_ids(ws, ["es", "fr"])
        es, fr = nums["es"], nums["fr"]
        f.purchase(uow.conn, ws, es, "sku-1", at=clock())
        f.event(uow.conn, ws, fr, "sku-1", at=clock())  # a custom event of that name enters nobody
        f.event(uow.conn, ws, es, "signed_up", at=clock())
        f.event(uow.conn, ws, fr, "signed_up", at=clock())
        uow.commit()
    runtime.worker.round()
    runtime.worker.round()
    assert [(m.to, m.data.count(b"Subject: hello")) for m in email.sent] == [("es@example.com", 1)]
    with container.uow() as uow:  # es buys anything within the split's window, and fr asks for a refund
        f.purchase(uow.conn, ws, es, "sku-7", at=clock() + 5)
        f.purchase(uow.conn, ws, fr, "refund", at=clock() + 5)
        uow.commit()
    clock.t += 101
    runtime.worker.round()
    runtime.worker.round()
    sent = sorted((m.to, b"Subject: thanks" in m.data) for m in email.sent)
    assert sent == [("es@example.com", False), ("es@example.com", False), ("es@example.com", True)]
    with container.uow(readonly=True) as uow:
        stats = services.program_stats(uow=uow, workspace_id=ws, program_id=quit_id)
    assert stats["entries"]["exited"] == 1 and stats["entries"]["done"] == 1  # fr left, es got `later`


def test_a_decision_split_goes_on_at_the_event_else_waits_out_its_window(container: Container) -> None:
    ws, clock, runtime, email, _ = _setup(container)
    steps = [{"id": "decide", "type": "decision_split", "event": "bought", "within_seconds": 3600,
              "yes": "thanks", "no": "nudge"},
             {"id": "thanks", "type": "message", "channel": "email", "email": {**MAIL, "subject": "thanks"}},
             {"id": "nudge", "type": "message", "channel": "email",
              "email": {**MAIL, "subject": "nudge"}}]  # fmt: skip
    canvas_id = _create(container, ws, "canvas", {"name": "D", "entry": {"type": "api"}, "steps": steps})
    body = {"canvas_id": canvas_id, "recipients": [{"external_user_id": "es"}, {"external_user_id": "fr"}]}
    with container.uow() as uow:
        triggers.trigger_canvas(uow=uow, workspace_id=ws, body=body, now=clock())
    runtime.worker.round()
    assert email.sent == []  # both wait at the split
    clock.t += 10
    with container.uow() as uow:
        es = uow.messaging.facts.nums_by_external_ids(ws, ["es"])["es"]
        f.event(uow.conn, ws, es, "bought", at=clock())
        f.event(uow.conn, ws, es, "other", at=clock())
        uow.commit()
    clock.t += 1
    runtime.worker.round()
    assert [(m.to, b"Subject: thanks" in m.data) for m in email.sent] == [("es@example.com", True)]
    clock.t += 3600
    runtime.worker.round()
    assert [(m.to, b"Subject: nudge" in m.data) for m in email.sent[1:]] == [("fr@example.com", True)]


def test_a_recurring_scheduled_entry_enters_the_audience_until_its_end(container: Container) -> None:
    ws, clock, runtime, email, _ = _setup(container)
    entry = {"type": "schedule", "time": T0 + 100, "every": "daily", "until": T0 + 100 + 86400}
    steps = [{"id": "hi", "type": "message", "channel": "email", "email": MAIL}]
    body = {"name": "Daily", "entry": entry, "steps": steps, "reentry": {"allowed": True, "after_days": 0}}
    _create(container, ws, "canvas", body)
    runtime.worker.round()
    assert email.sent == []  # not due yet
    for day in range(3):  # the first day, the next (the last before `until`), then nothing more
        clock.t = T0 + 101 + day * 86400
        runtime.worker.round()
        runtime.worker.round()
    assert sorted(m.to for m in email.sent) == ["es@example.com", "es@example.com", "fr@example.com",
                                                 "fr@example.com"]  # fmt: skip
    refused = {**body, "entry": {**entry, "every": "hourly"}}
    with container.uow() as uow, pytest.raises(InvalidProgram, match=r"entry\.every: must be one of daily"):
        services.create_program(uow=uow, workspace_id=ws, kind="canvas", raw=refused, now=clock())


def test_leaving_a_segment_entry_audience_ends_the_journey(container: Container) -> None:
    ws, clock, runtime, email, _ = _setup(container)
    spain = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}
    with container.uow() as uow:
        draft = segments.SegmentDraft(name="Spain", filter=spain)
        segment = segments.create_segment(uow=uow, workspace_id=ws, draft=draft, now=clock())
    steps = [{"id": "wait", "type": "delay", "seconds": 60, "next": "hi"},
             {"id": "hi", "type": "message", "channel": "email", "email": MAIL}]  # fmt: skip
    body = {"name": "S", "entry": {"type": "schedule", "time": T0 + 1, "segment_id": segment.id},
            "exit": {"leaves_audience": True}, "steps": steps}  # fmt: skip
    canvas_id = _create(container, ws, "canvas", body)
    clock.t = T0 + 2
    runtime.worker.round()  # es (the segment's only member) enters and waits
    with container.uow() as uow:  # then moves to France: no longer in the entry audience
        es = uow.messaging.facts.nums_by_external_ids(ws, ["es"])["es"]
        f.change_user(uow.conn, es, now=clock() + 1, country="FR")
        uow.commit()
    clock.t += 61
    runtime.worker.round()
    runtime.worker.round()
    assert email.sent == []
    with container.uow(readonly=True) as uow:
        stats = services.program_stats(uow=uow, workspace_id=ws, program_id=canvas_id)
    assert stats["entries"]["entered"] == 1 and stats["entries"]["exited"] == 1


def test_a_delay_until_a_time_of_day_is_in_the_users_zone_or_in_utc(container: Container) -> None:
    ws, clock, runtime, email, _ = _setup(container)
    clock.t = T0 - T0 % 86400 + 86400 + 3600  # 01:00 UTC: 10:00 in Tokyo
    with container.uow() as uow:
        f.user(uow.conn, ws, now=clock(), external_id="jp", email="jp@example.com", time_zone="Asia/Tokyo")
        uow.commit()
    ids: dict[bool, str] = {}
    for local in (True, False):
        steps = [{"id": "wait", "type": "delay", "until": "12:00", "in_local_time": local, "next": "hi"},
                 {"id": "hi", "type": "message", "channel": "email", "email": MAIL}]  # fmt: skip
        body = {"name": f"L{local}", "entry": {"type": "api"}, "steps": steps}
        ids[local] = _create(container, ws, "canvas", body)
    for canvas_id in ids.values():
        with container.uow() as uow:
            body = {"canvas_id": canvas_id, "recipients": [{"external_user_id": "jp"}]}
            triggers.trigger_canvas(uow=uow, workspace_id=ws, body=body, now=clock())
    runtime.worker.round()
    clock.t += 2 * 3600 + 60  # 03:01 UTC, 12:01 in Tokyo: only the local-time delay is over
    runtime.worker.round()
    assert len(email.sent) == 1
    clock.t += 9 * 3600  # 12:01 UTC
    runtime.worker.round()
    assert len(email.sent) == 2


def test_a_canvas_trigger_retried_across_a_dedupe_window_enters_no_one_twice(container: Container) -> None:
    """With re-entry allowed, an identical `/canvas/trigger/send` body in the next 10-minute window (a
    client's retry at 12:10:01 of a call made at 12:09:59) enters nobody again; a later call does."""
    ws, clock, runtime, email, _ = _setup(container)
    body_def = {"name": "Again", "entry": {"type": "api"}, "reentry": {"allowed": True, "after_days": 0},
                "steps": [{"id": "hello", "type": "message", "channel": "email", "email": MAIL}]}  # fmt: skip
    edge = (T0 // triggers.DEDUPE_WINDOW + 1) * triggers.DEDUPE_WINDOW
    clock.t = edge - 1
    canvas_id = _create(container, ws, "canvas", body_def)
    body = {"canvas_id": canvas_id, "recipients": [{"external_user_id": "es"}, {"external_user_id": "fr"}]}
    for at in (edge - 1, edge + 1):
        clock.t = at
        with container.uow() as uow:
            triggers.trigger_canvas(uow=uow, workspace_id=ws, body=body, now=clock())
        runtime.worker.round()
    assert sorted(m.to for m in email.sent) == ["es@example.com", "fr@example.com"]
    clock.t = edge + triggers.DEDUPE_WINDOW + 1  # the window after the retry's: a new call
    with container.uow() as uow:
        triggers.trigger_canvas(
            uow=uow, workspace_id=ws, body={**body, "recipients": body["recipients"][:1]}, now=clock()
        )
    runtime.worker.round()
    assert sorted(m.to for m in email.sent) == ["es@example.com", "es@example.com", "fr@example.com"]


def test_each_canvas_recipient_enters_with_the_call_s_properties_and_its_own(container: Container) -> None:
    ws, clock, runtime, email, _ = _setup(container)
    body_def = {"name": "Own", "entry": {"type": "api"},
                "steps": [{"id": "hello", "type": "message", "channel": "email", "email": MAIL}]}  # fmt: skip
    canvas_id = _create(container, ws, "canvas", body_def)
    body = {"canvas_id": canvas_id, "canvas_entry_properties": {"n": "all"},
            "recipients": [{"external_user_id": "es", "canvas_entry_properties": {"n": "own"}},
                           {"external_user_id": "fr"}, {"external_user_id": "nobody"}]}  # fmt: skip
    with container.uow() as uow:
        answer = triggers.trigger_canvas(uow=uow, workspace_id=ws, body=body, now=clock())
    assert answer["errors"] == ["unknown user: nobody"]
    runtime.worker.round()
    subjects = {m.to: m.data.split(b"Subject: ")[1].split(b"\r\n")[0] for m in email.sent}
    assert subjects == {"es@example.com": b"S own", "fr@example.com": b"S all"}
