"""The use case: sync one cohort's membership to a partner endpoint, sending only what changed."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

import httpx

from .api import PartnerApi, RetryListener
from .chunking import MAX_IDS_PER_REQUEST, chunk_changes
from .diff import ChangeSet, diff_membership
from .errors import PartnerClientError
from .memory import CohortApi
from .model import Cohort, Secret, SyncResult, Target
from .retry import RetryPolicy
from .sources import Source
from .state import CohortState, StateStore, cohort_key

ProgressListener = Callable[[int, int], None]
"""Called with (identifiers acknowledged so far, identifiers to send) after each chunk."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CohortSyncClient:
    """Keeps cohorts on one server in step with their sources.

    >>> client = CohortSyncClient("http://127.0.0.1:8000", partner="heap",
    ...     partner_api_key="PK", data_import_key="DIK", state="var/sync-state.sqlite")  # doctest: +SKIP
    >>> client.sync(Cohort("trial-abandoners", "Trial abandoners"), IterableSource(["u1"]))  # doctest: +SKIP
    """

    def __init__(
        self,
        endpoint: str,
        *,
        partner: str,
        partner_api_key: str,
        data_import_key: str,
        state: StateStore | str | Path = "var/sync-state.sqlite",
        policy: RetryPolicy | None = None,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = _utc_now,
        jitter: Callable[[], float] = random.random,
        timeout: float = 30.0,
        chunk_size: int = MAX_IDS_PER_REQUEST,
        on_retry: RetryListener | None = None,
        api: CohortApi | None = None,
    ) -> None:
        """Pass ``api`` (e.g. ``InMemoryPartner``) to replace the HTTP edge; ``state`` may be a path."""
        self.target = Target(endpoint, partner, Secret(partner_api_key), Secret(data_import_key))
        self._owns_state = not isinstance(state, StateStore)
        self.state = state if isinstance(state, StateStore) else StateStore(state)
        self._clock = clock
        self._chunk_size = min(chunk_size, MAX_IDS_PER_REQUEST)
        self._http_api = PartnerApi(
            self.target,
            http=http,
            policy=policy,
            sleep=sleep,
            clock=clock,
            jitter=jitter,
            timeout=timeout,
            on_retry=on_retry,
        )
        self._api: CohortApi = api if api is not None else self._http_api
        self._requests = 0

    def __enter__(self) -> CohortSyncClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the HTTP client and the state file (when this object opened them)."""
        self._http_api.close()
        if self._owns_state:
            self.state.close()

    def sync(
        self,
        cohort: Cohort,
        source: Source,
        *,
        dry_run: bool = False,
        on_progress: ProgressListener | None = None,
        on_diff: Callable[[ChangeSet], None] | None = None,
    ) -> SyncResult:
        """Send the name if new or changed, then the exits and entries since the last sync."""
        started = time.perf_counter()
        requests_before = self._http_api.requests + self._requests
        state = self.state.ensure(self.target, cohort.cohort_id)
        changes = diff_membership(source.batches(), self.state.previous(state.key))
        try:
            if on_diff is not None:
                on_diff(changes)
            name_due = state.name_sent != cohort.name
            if not dry_run:
                self._send(state, cohort, changes, name_due, on_progress)
            return SyncResult(
                cohort_id=cohort.cohort_id,
                dry_run=dry_run,
                name_sent=name_due,
                adds=changes.adds,
                removes=changes.removes,
                members=changes.members,
                requests=self._http_api.requests + self._requests - requests_before,
                duration_s=time.perf_counter() - started,
                sample_adds=tuple(changes.sample_adds),
                sample_removes=tuple(changes.sample_removes),
                by_namespace=dict(changes.by_namespace),
            )
        finally:
            changes.close()

    def _send(
        self,
        state: CohortState,
        cohort: Cohort,
        changes: ChangeSet,
        name_due: bool,
        on_progress: ProgressListener | None,
    ) -> None:
        self.state.record_attempt(state.key, self._clock())
        try:
            if name_due:
                created_at = cohort.created_at or _parse(state.created_at) or self._clock()
                self._api.upsert_cohort(cohort, created_at)
                self._requests += int(self._api is not self._http_api)  # the HTTP edge counts its own
                self.state.record_name(state.key, cohort.name, created_at.isoformat())
            total, done = changes.adds + changes.removes, 0
            for should_remove in (True, False):  # exits first: a user re-keyed from alias to id stays in
                groups = changes.groups(should_remove=should_remove)
                for chunk in chunk_changes(groups, should_remove=should_remove, limit=self._chunk_size):
                    self._api.send_changes(cohort.cohort_id, [chunk.to_change()])
                    self._requests += int(self._api is not self._http_api)  # the HTTP edge counts its own
                    self.state.record_ack(state.key, chunk)
                    done += chunk.count
                    if on_progress is not None:
                        on_progress(done, total)
        except KeyboardInterrupt:
            # recorded if the state file lets it; the interrupt is what the caller gets, always (a
            # StateError in its place was retried as a failed sync: `--every` ignored Ctrl-C)
            with suppress(PartnerClientError):
                self.state.record_failure(state.key, "KeyboardInterrupt")
            raise
        except PartnerClientError as exc:
            self.state.record_failure(state.key, str(exc) or type(exc).__name__)
            raise
        self.state.compact(state.key)
        self.state.record_success(state.key, self._clock(), changes.members)

    def status(self) -> list[CohortState]:
        """Every cohort in the state file."""
        return self.state.cohorts()

    def reset(self, cohort_id: str | None = None) -> int:
        """Forget what was sent (one cohort of this target, or all of its cohorts): the next sync resends."""
        if cohort_id is not None:
            return self.state.reset([cohort_key(self.target, cohort_id)])
        keys = [s.key for s in self.state.cohorts() if s.key == cohort_key(self.target, s.cohort_id)]
        return self.state.reset(keys)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
