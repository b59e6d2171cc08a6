"""An in-memory twin of the partner endpoints, for tests and dry experiments.

It applies the protocol's rules (1,000 identifiers per request, all-or-nothing) and keeps
names and membership per cohort; ``fail_after(n)`` lets n more ``send_changes`` through, then fails.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from .chunking import MAX_IDS_PER_REQUEST
from .errors import RequestRejected, RetriesExhausted
from .model import DEVICE_ID, EXTERNAL_ID, Cohort


class CohortApi(Protocol):
    """The two partner calls the sync needs."""

    def upsert_cohort(self, cohort: Cohort, created_at: datetime) -> None:
        """Create or rename a cohort."""
        ...

    def send_changes(self, cohort_id: str, changes: list[dict[str, Any]]) -> None:
        """Apply ``cohort_changes``."""
        ...


class InMemoryPartner:
    """The partner endpoints in memory; membership as ``{(namespace, identifier)}`` per cohort."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.members: dict[str, set[tuple[str, str]]] = {}
        self.calls: list[tuple[str, Any]] = []
        self._allowed: int | None = None

    def fail_after(self, sends: int | None) -> None:
        """Let ``sends`` more ``send_changes`` calls succeed, then fail each one (``None``: never fail)."""
        self._allowed = sends

    def upsert_cohort(self, cohort: Cohort, created_at: datetime) -> None:
        """Create or rename a cohort."""
        self.calls.append(("cohorts", cohort.name))
        self.names[cohort.cohort_id] = cohort.name
        self.members.setdefault(cohort.cohort_id, set())

    def send_changes(self, cohort_id: str, changes: list[dict[str, Any]]) -> None:
        """Apply ``cohort_changes`` all-or-nothing, or fail as configured."""
        if self._allowed is not None:
            if self._allowed <= 0:
                raise RetriesExhausted(
                    "twin configured to fail", status=503, attempts=1, path="/cohorts/users"
                )
            self._allowed -= 1
        count = sum(len(c["user_ids"]) + len(c["device_ids"]) + len(c["aliases"]) for c in changes)
        if count > MAX_IDS_PER_REQUEST:
            raise RequestRejected(
                "Only 1,000 `user_ids`, `device_ids`, and `aliases` are allowed per request",
                request_part=f"{count} identifiers",
            )
        self.calls.append(("cohorts/users", changes))
        members = self.members.setdefault(cohort_id, set())
        for change in changes:
            ids = {(EXTERNAL_ID, i) for i in change["user_ids"]}
            ids |= {(DEVICE_ID, d) for d in change["device_ids"]}
            ids |= {("alias:" + a["alias_label"], a["alias_name"]) for a in change["aliases"]}
            if change.get("should_remove"):
                members -= ids
            else:
                members |= ids

    def sent_identifiers(self) -> int:
        """Identifiers received over all ``send_changes`` calls."""
        return sum(
            len(c["user_ids"]) + len(c["device_ids"]) + len(c["aliases"])
            for kind, changes in self.calls
            if kind == "cohorts/users"
            for c in changes
        )
