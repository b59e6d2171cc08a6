"""Outbox retention: delete events older than the retention period that no connector still needs.

Each chunk is its own short transaction, so delivery never waits long behind a prune.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from cohorthub.currents.errors import InvalidConnector
from cohorthub.currents.ports import CurrentsUnitOfWork

DEFAULT_RETENTION_SECONDS = 7 * 86400.0
DEFAULT_CHUNK = 5_000
UowFactory = Callable[..., AbstractContextManager[CurrentsUnitOfWork]]


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune deleted (or would delete, on a dry run)."""

    removed: int
    workspaces: int
    before: float
    dry_run: bool


def validate_retention(seconds: float) -> float:
    """A retention period must be a positive number of seconds."""
    if not seconds > 0:
        raise InvalidConnector("The retention period must be positive (e.g. 7d, 36h)")
    return seconds


def prune_outbox(
    *,
    uow: UowFactory,
    older_than: float = DEFAULT_RETENTION_SECONDS,
    dry_run: bool = False,
    chunk: int = DEFAULT_CHUNK,
    now: float,
) -> PruneReport:
    """Delete outbox events recorded more than `older_than` seconds ago that every connector of
    their workspace has delivered or dead-lettered (dead letters keep theirs), in chunks."""
    before = now - validate_retention(older_than)
    with uow(readonly=True) as unit:
        workspace_ids = unit.currents.workspace_ids()
    removed = 0
    for workspace_id in workspace_ids:
        after = 0
        while True:
            with uow(readonly=dry_run) as unit:
                part = unit.currents.prune_outbox_chunk(
                    workspace_id, before=before, after_seq=after, limit=chunk, dry_run=dry_run
                )
                if not dry_run:
                    unit.commit()
            removed += part.removed
            if part.done or part.last_seq <= after:
                break
            after = part.last_seq
    return PruneReport(removed=removed, workspaces=len(workspace_ids), before=before, dry_run=dry_run)
