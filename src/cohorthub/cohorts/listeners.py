"""Membership follows identity: a merged orphan's cohorts pass to its target; a deleted user leaves all."""

from __future__ import annotations

from typing import Any

from pyroaring import BitMap

from cohorthub.cohorts.membership import Membership, MembershipCache
from cohorthub.cohorts.model import Cohort
from cohorthub.cohorts.ports import CohortRepository
from cohorthub.cohorts.services import apply_membership_change, cohorts_holding
from cohorthub.identity.listeners import Merge


class CohortMembershipListener:
    """The identity listener of the cohort domain (registered in the composition root)."""

    def __init__(self, cache: MembershipCache, *, compaction_threshold: int) -> None:
        self._cache = cache
        self._threshold = compaction_threshold

    def users_leaving(self, uow: Any, user_nums: list[int], *, workspace_id: str) -> None:
        """Lock the cohorts holding the users (key order) before their rows are locked to go.

        An import locks its cohort, then the users it matched; a delete or merge that locked the
        users first, then their cohorts, deadlocked with an import of the same users into one of them.
        """
        held = cohorts_holding(uow=uow, cache=self._cache, workspace_id=workspace_id, user_nums=user_nums)
        uow.cohorts.get_many([cohort.pk for cohort, _ in held], for_update=True)

    def users_merged(self, uow: Any, merges: list[Merge], *, workspace_id: str, now: float) -> None:
        """Each cohort holding an orphan now holds its target instead."""
        target_of = {m.orphan_num: m.target_num for m in merges}
        for cohort, members in self._cohorts_holding(uow, workspace_id, list(target_of)):
            gone = BitMap(n for n in target_of if n in members.bitmap)
            arriving = BitMap(target_of[n] for n in gone) - members.bitmap
            self._apply(uow, cohort, members, arriving, gone, "merge", now)

    def users_deleted(self, uow: Any, user_nums: list[int], *, workspace_id: str, now: float) -> None:
        """The users leave every cohort they are in."""
        for cohort, members in self._cohorts_holding(uow, workspace_id, user_nums):
            self._apply(uow, cohort, members, BitMap(), members.bitmap & BitMap(user_nums), "delete", now)

    def _cohorts_holding(
        self, uow: Any, workspace_id: str, user_nums: list[int]
    ) -> list[tuple[Cohort, Membership]]:
        repo: CohortRepository = uow.cohorts
        # The users' rows are already written (merged away or deleted), so an import that matched
        # them has committed or will skip them: the cohorts holding them now are all there will be.
        candidates = cohorts_holding(
            uow=uow, cache=self._cache, workspace_id=workspace_id, user_nums=user_nums
        )
        # Lock in pk order, so concurrent writers never deadlock, then re-read each at its locked version.
        locked = repo.get_many([cohort.pk for cohort, _ in candidates], for_update=True)
        held = [(cohort, self._cache.current(repo, cohort)) for cohort in locked]
        return [(c, m) for c, m in held if any(n in m.bitmap for n in user_nums)]

    def _apply(
        self,
        uow: Any,
        cohort: Cohort,
        members: Membership,
        entered: BitMap,
        left: BitMap,
        reason: str,
        now: float,
    ) -> None:
        # The cache is not told: it is keyed by version and catches up once the caller commits.
        apply_membership_change(
            uow.cohorts, cohort, members, entered, left,
            reason=reason, request_id=None, now=now, compaction_threshold=self._threshold,
        )  # fmt: skip
