"""Background warm-up: build the indexes of every non-archived segment when a server starts.

`cohorthub serve` starts one daemon thread that evaluates each non-archived segment of every
workspace once, oldest first, so the universe, leaf and cohort bitmaps are in memory before
clients ask. Startup does not wait for it. A request that arrives meanwhile takes the
workspace's index lock between two segments: it waits at most for the leaf being built, which
it would otherwise have had to build itself. A failure is logged and the thread moves on; the
next request evaluates as if there had been no warm-up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

from cohorthub.cohorts.membership import MembershipCache
from cohorthub.segments.indexes import SegmentIndexes
from cohorthub.segments.ports import SegmentUnitOfWork
from cohorthub.segments.services import evaluate_segment

log = logging.getLogger(__name__)

UnitOfWorkFactory = Callable[[], AbstractContextManager[SegmentUnitOfWork]]


def warm_segments(
    *,
    uow: UnitOfWorkFactory,
    indexes: SegmentIndexes,
    membership: MembershipCache,
    now: Callable[[], float],
    stop: threading.Event | None = None,
) -> int:
    """Evaluate every non-archived segment once; how many were evaluated."""
    with uow() as unit:
        targets = unit.segments.active()
    done = 0
    for workspace_id, segment_id in targets:
        if stop is not None and stop.is_set():
            break
        try:
            with uow() as unit:
                evaluate_segment(
                    uow=unit,
                    indexes=indexes,
                    membership=membership,
                    workspace_id=workspace_id,
                    segment_id=segment_id,
                    now=now(),
                )
            done += 1
        except Exception:  # a broken segment must not stop the others from warming
            log.warning("segment warm-up: %s failed", segment_id, exc_info=True)
    return done


def start_warmup(
    *, uow: UnitOfWorkFactory, indexes: SegmentIndexes, membership: MembershipCache, now: Callable[[], float]
) -> threading.Event:
    """Warm every non-archived segment in a daemon thread; set the returned event to stop it early."""
    stop = threading.Event()

    def run() -> None:
        try:
            count = warm_segments(uow=uow, indexes=indexes, membership=membership, now=now, stop=stop)
            log.info("segment warm-up: %d segments ready", count)
        except Exception:
            log.warning("segment warm-up stopped", exc_info=True)

    threading.Thread(target=run, name="segment-warmup", daemon=True).start()
    return stop
