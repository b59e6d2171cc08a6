"""What a user received: the send ledger read per user, newest first, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass

from cohorthub.messaging.ports import MessagingUnitOfWork, Program, ReceivedRow

PAGE = 20


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message the user was sent, and the campaign or Canvas it came from (None once deleted)."""

    row: ReceivedRow
    program: Program | None

    @property
    def step_name(self) -> str | None:
        """The Canvas step's name (None for a campaign)."""
        if self.program is None or self.program.kind != "canvas":
            return None
        steps = self.program.spec.get("steps") or []
        return next((s.get("name") or s.get("id") for s in steps if s.get("id") == self.row.step_id), None)


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of a user's messages and the cursor of the next (older) page, if any."""

    messages: list[ReceivedMessage]
    older: tuple[float, int] | None


def user_messages(
    *,
    uow: MessagingUnitOfWork,
    workspace_id: str,
    braze_id: str,
    before: tuple[float, int] | None = None,
    limit: int = PAGE,
) -> MessagePage:
    """The messages sent to a user (by braze id), newest first, `limit` older than `before`."""
    found = uow.messaging.facts.nums_by_braze_ids(workspace_id, [braze_id])
    if braze_id not in found:
        return MessagePage([], None)
    rows = uow.messaging.ledger.for_user(workspace_id, found[braze_id], before=before, limit=limit + 1)
    programs: dict[str, Program | None] = {}
    for row in rows[:limit]:
        if row.program_id not in programs:
            programs[row.program_id] = uow.messaging.programs.get(workspace_id, row.program_id)
    messages = [ReceivedMessage(r, programs[r.program_id]) for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return MessagePage(messages, (last.created_at, last.id) if last else None)
