"""The background warm-up builds the indexes of every non-archived segment, and only those."""

from __future__ import annotations

import threading
from typing import Any

from cohorthub.bootstrap import Container
from cohorthub.segments import services
from cohorthub.segments.model import parse_filter
from cohorthub.segments.warmup import start_warmup, warm_segments
from tests.integration.segments import factories as f

NOW = 1_800_000_000.0
ES = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}
FR = {"type": "attribute", "attribute": "country", "op": "equals", "value": "FR"}


def _segments(c: Container) -> str:
    with c.uow() as uow:
        ws = f.workspace(uow.conn, now=NOW)
        f.user(uow.conn, ws, now=NOW, country="ES")
        uow.commit()
    for name, raw in (("es", ES), ("fr", FR)):
        with c.uow() as uow:
            draft = services.SegmentDraft(name=name, filter=raw)
            record = services.create_segment(uow=uow, workspace_id=ws, draft=draft, now=NOW)
        if name == "fr":
            with c.uow() as uow:
                services.set_archived(uow=uow, workspace_id=ws, segment_id=record.id, archived=True, now=NOW)
    return ws


def test_warm_up_evaluates_each_non_archived_segment(container: Container) -> None:
    ws = _segments(container)
    done = warm_segments(
        uow=lambda: container.uow(readonly=True),
        indexes=container.segments,
        membership=container.membership,
        now=lambda: NOW,
    )
    index = container.segments.workspace(ws)
    assert done == 1
    assert index.ready and len(index.universe()) == 1
    assert list(index.leaves) == [parse_filter(ES)]


def test_warm_up_runs_in_a_thread_that_startup_does_not_wait_for(container: Container) -> None:
    ws = _segments(container)
    gate = threading.Event()

    def held_uow() -> Any:  # the warm-up cannot read anything until the test opens the gate
        gate.wait(timeout=60)
        return container.uow(readonly=True)

    start_warmup(uow=held_uow, indexes=container.segments, membership=container.membership, now=lambda: NOW)
    (thread,) = [t for t in threading.enumerate() if t.name == "segment-warmup"]  # returned while it waits
    assert not container.segments.workspace(ws).leaves
    gate.set()
    thread.join(timeout=60)
    assert list(container.segments.workspace(ws).leaves) == [parse_filter(ES)]
