"""What the cohort use cases need from storage."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from cohorthub.cohorts.model import Alias, Cohort
from cohorthub.partners.ports import PartnerRepository

#: One logged membership change: (cohort version, user num, entered?).
LoggedChange = tuple[int, int, bool]


class MembershipLog(Protocol):
    """The persisted membership of cohorts: chunk snapshots plus the change log."""

    def load_chunks(self, cohort_pk: int) -> list[tuple[int, bytes]]: ...
    def changes_after(
        self, cohort_pk: int, *, after_version: int, upto_version: int
    ) -> list[LoggedChange]: ...


class CohortRepository(MembershipLog, Protocol):
    """Cohorts, their membership log and snapshots, and identifier resolution."""

    def get(
        self, workspace_id: str, partner: str, cohort_id: str, *, for_update: bool = False
    ) -> Cohort | None: ...
    def get_many(self, cohort_pks: Iterable[int], *, for_update: bool = False) -> list[Cohort]: ...
    def ensure(
        self, *, workspace_id: str, partner: str, cohort_id: str, now: float
    ) -> tuple[Cohort, bool]: ...
    def rename(self, cohort_pk: int, *, name: str, partner_created_at: float, now: float) -> None: ...
    def in_workspace(self, workspace_id: str, partner: str | None) -> list[Cohort]: ...
    def match_users(
        self, workspace_id: str, user_ids: Iterable[str], device_ids: Iterable[str]
    ) -> tuple[dict[str, int], dict[str, int]]: ...
    def resolve_aliases(self, workspace_id: str, aliases: Iterable[Alias]) -> dict[Alias, int]: ...
    def append_changes(
        self,
        cohort_pk: int,
        *,
        version: int,
        entered: Sequence[int],
        left: Sequence[int],
        at: float,
        request_id: str | None,
        reason: str,
    ) -> None: ...
    def set_membership(self, cohort_pk: int, *, version: int, size: int, now: float) -> None: ...
    def record_import(
        self,
        cohort_pk: int,
        *,
        request_id: str,
        now: float,
        identifiers: int,
        matched: int,
        unmatched: int,
        entered: int,
        left: int,
        unmatched_sample: list[str],
    ) -> None: ...
    def write_chunks(
        self, cohort_pk: int, chunks: dict[int, bytes | None], *, snapshot_version: int
    ) -> None: ...
    def changes_since(self, cohort_pk: int, since: float) -> list[tuple[int, bool]]: ...
    def import_flow(self, cohort_pk: int, since: float) -> list[tuple[float, int, int]]: ...
    def members(self, user_nums: Sequence[int]) -> list[dict[str, Any]]: ...


class CohortChangeListener(Protocol):
    """Told after an import that changed a cohort has committed (e.g. to wake the messaging worker)."""

    def cohort_changed(self, workspace_id: str, partner: str, cohort_id: str) -> None: ...


class CohortUnitOfWork(Protocol):
    """A transaction that sees cohorts and partner credentials."""

    @property
    def cohorts(self) -> CohortRepository: ...

    @property
    def partners(self) -> PartnerRepository: ...

    def commit(self) -> None: ...
