"""The messaging worker: one loop that runs due dispatches, Canvas entries, steps and event reactions."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cohorthub.messaging.event_reactions import EventReactions
from cohorthub.messaging.journeys import Journeys
from cohorthub.messaging.scheduler import JobRunner

log = logging.getLogger("cohorthub.messaging")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How often the worker looks for work when idle."""

    poll_seconds: float = 0.2


class MessagingWorker:
    """Runs rounds until stopped; each round does whatever is due, then waits when nothing was.

    The wait ends early when the worker is woken (a partner import in this process committed, say):
    the poll interval is then only how soon other processes' changes are seen.
    """

    def __init__(
        self,
        *,
        jobs: JobRunner,
        journeys: Journeys,
        reactions: EventReactions,
        options: WorkerOptions = WorkerOptions(),
    ) -> None:
        self._jobs = jobs
        self._journeys = journeys
        self._reactions = reactions
        self._options = options
        self._wake = threading.Event()

    def wake(self) -> None:
        """Start the next round now rather than after the poll interval."""
        self._wake.set()

    def cohort_changed(self, workspace_id: str, partner: str, cohort_id: str) -> None:
        """A partner import committed: its users may enter a Canvas."""
        self.wake()

    def round(self) -> int:
        """One pass over every source of work; returns how much was done."""
        done = 0
        for step in self._steps():
            try:
                done += step()
            except Exception:
                log.exception("messaging worker: %s failed", getattr(step, "__name__", step))
        return done

    def _steps(self) -> list[Callable[[], int]]:
        return [
            self._run_jobs,
            self._journeys.enter_from_cohorts,
            self._journeys.enter_from_segments,
            self._reactions.scan_events,
            self._journeys.advance,
        ]

    def _run_jobs(self) -> int:
        jobs = self._jobs.claim()
        for job in jobs:
            try:
                self._jobs.run(job)
            except Exception:
                log.exception("messaging worker: dispatch %s of %s failed", job.dispatch_id, job.program_id)
        return len(jobs)

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set."""
        while not stop.is_set():
            self._wake.clear()
            if not self.round():
                self._wake.wait(self._options.poll_seconds)
