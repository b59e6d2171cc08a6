"""How higher domains learn of identity changes inside the same transaction.

Identity sits at the bottom and imports no higher domain; cohorts (membership follows a
merge, a deleted user leaves every cohort) and segments (fresh indexes) register a
listener in the composition root. Identity services call every listener *before* they
commit, passing the same unit of work, so the follow-up changes are in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Merge:
    """`orphan` (an anonymous or alias-only profile) was merged into `target` and removed."""

    orphan_num: int
    target_num: int


class IdentityListener(Protocol):
    """Reacts to merges and deletions within the caller's transaction."""

    def users_leaving(self, uow: Any, user_nums: list[int], *, workspace_id: str) -> None:
        """Called before stored users are deleted or merged away, before their rows are locked to go.

        A listener that will change other rows for them locks those rows here: a writer that takes
        those rows, then the users' (a cohort import: its cohort, then the users it matched), would
        otherwise wait for this transaction while it waits for that writer.
        """
        ...

    def users_merged(self, uow: Any, merges: list[Merge], *, workspace_id: str, now: float) -> None:
        """Called after the merges are written, before commit."""
        ...

    def users_deleted(self, uow: Any, user_nums: list[int], *, workspace_id: str, now: float) -> None:
        """Called after the users' rows are deleted (their numbers are final), before commit."""
        ...
