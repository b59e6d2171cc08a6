"""Sessions follow their user through merges and leave with a deleted user."""

from __future__ import annotations

from typing import Any

from cohorthub.identity.listeners import Merge


class SessionIdentityListener:
    """Moves an orphan's sessions to the profile it merged into; deletes a deleted user's sessions."""

    def users_leaving(self, uow: Any, user_nums: list[int], *, workspace_id: str) -> None:
        """Nothing to lock first: the rows this listener writes are its own."""

    def users_merged(self, uow: Any, merges: list[Merge], *, workspace_id: str, now: float) -> None:
        """Re-point the orphans' sessions, in the identity transaction."""
        uow.apps.move_sessions([(m.orphan_num, m.target_num) for m in merges])

    def users_deleted(self, uow: Any, user_nums: list[int], *, workspace_id: str, now: float) -> None:
        """A deleted user's sessions go with them."""
        uow.apps.delete_sessions(list(user_nums))
