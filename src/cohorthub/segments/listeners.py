"""Keeps segment indexes of every process fresh across merges and deletions."""

from __future__ import annotations

from typing import Any

from cohorthub.identity.listeners import Merge


class SegmentIdentityListener:
    """Writes a tombstone for each user that disappears, in the identity transaction."""

    def users_leaving(self, uow: Any, user_nums: list[int], *, workspace_id: str) -> None:
        """Nothing to lock first: the rows this listener writes are its own."""

    def users_merged(self, uow: Any, merges: list[Merge], *, workspace_id: str, now: float) -> None:
        """The orphans are gone; the targets' own rows carry a fresh `updated_at`."""
        uow.segments.record_deletions(workspace_id, [m.orphan_num for m in merges], now=now)

    def users_deleted(self, uow: Any, user_nums: list[int], *, workspace_id: str, now: float) -> None:
        """Deleted users leave every segment at the next evaluation, in every process."""
        uow.segments.record_deletions(workspace_id, list(user_nums), now=now)
