"""Changes reach the next evaluation, also when another process (container) made them."""

from __future__ import annotations

from cohorthub.bootstrap import Container, bootstrap
from cohorthub.config import Settings
from cohorthub.segments.model import DAY, parse_filter
from tests.integration.segments import factories as f
from tests.integration.segments.test_engine_agrees import engine_members

NOW = 1_800_000_000.0
ES = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}
TRIAL = {"type": "cohort", "partner": "heap", "cohort_id": "heap-123", "op": "includes"}
SEGMENT = {"and": [TRIAL, {"not": {**TRIAL, "cohort_id": "heap-9"}}, ES]}


def test_a_second_process_sees_updates_imports_events_and_deletions(
    container: Container, settings: Settings
) -> None:
    other = bootstrap(settings, run_migrations=False)
    try:
        with container.uow() as uow:
            ws = f.workspace(uow.conn, now=NOW)
            u1, u2, u3 = (f.user(uow.conn, ws, now=NOW, country="ES") for _ in range(3))
            trial = f.cohort(uow.conn, ws, "heap-123", name="Trial abandoners", now=NOW)
            converted = f.cohort(uow.conn, ws, "heap-9", name="Converted", now=NOW)
            f.cohort_write(uow.conn, trial, entered=[u1, u2, u3], now=NOW)
            f.cohort_write(uow.conn, converted, entered=[u3], now=NOW)
            uow.commit()
        assert engine_members(container, ws, SEGMENT) == {u1, u2}
        assert engine_members(other, ws, SEGMENT) == {u1, u2}

        with other.uow() as uow:  # the other process changes a country, imports and deletes
            f.change_user(uow.conn, u1, now=NOW + 5, country="FR")
            f.cohort_write(uow.conn, converted, left=[u3], now=NOW + 5)
            for listener in other.identity_listeners:
                listener.users_deleted(uow, [u2], workspace_id=ws, now=NOW + 5)
            f.delete_user(uow.conn, u2)
            uow.commit()
        assert engine_members(container, ws, SEGMENT) == {u3}

        with other.uow() as uow:
            u4 = f.user(uow.conn, ws, now=NOW + 6, country="ES")
            f.cohort_write(uow.conn, trial, entered=[u4], now=NOW + 6)
            f.event(uow.conn, ws, u4, "play", at=NOW)
            uow.commit()
        played = {"and": [SEGMENT, {"type": "event", "event": "play", "op": "at_least", "count": 1}]}
        assert engine_members(container, ws, played) == {u4}
        assert engine_members(container, ws, SEGMENT) == {u3, u4}
    finally:
        other.close()


def test_an_update_committed_late_with_an_older_timestamp_is_still_seen(container: Container) -> None:
    with container.uow() as uow:
        ws = f.workspace(uow.conn, now=NOW)
        u1 = f.user(uow.conn, ws, now=NOW + 10, country="FR")
        uow.commit()
    assert engine_members(container, ws, ES) == set()
    with container.uow() as uow:  # a writer that took its `now` earlier commits only now
        f.change_user(uow.conn, u1, now=NOW + 1, country="ES")
        uow.commit()
    assert engine_members(container, ws, ES) == {u1}


def test_a_relative_window_slides_without_rebuilding_the_leaf(container: Container) -> None:
    recent = {"type": "event", "event": "play", "op": "at_least", "count": 1, "within_days": 1}
    new = {"type": "attribute", "attribute": "created_at", "op": "less_than_days_ago", "value": 1}
    with container.uow() as uow:
        ws = f.workspace(uow.conn, now=NOW)
        u1, u2 = (f.user(uow.conn, ws, now=NOW - DAY + 90 * i) for i in (1, 2))
        f.event(uow.conn, ws, u1, "play", at=NOW - DAY + 90)
        f.event(uow.conn, ws, u2, "play", at=NOW - DAY + 180)
        uow.commit()
    for raw in (recent, new):
        assert engine_members(container, ws, raw) == {u1, u2}
        cached = container.segments.workspace(ws).leaves[parse_filter(raw)]
        assert engine_members(container, ws, raw, now=NOW + 120) == {u2}  # u1's moment passed
        assert engine_members(container, ws, raw, now=NOW + 240) == set()
        assert container.segments.workspace(ws).leaves[parse_filter(raw)] is cached  # slid, not rebuilt
