"""What the identity use cases need from storage."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cohorthub.currents.envelope import Envelope
from cohorthub.identity.workset import ChangeSet, Loaded, Lookup

#: A user created with nothing else to write: `(braze_id, external_id, *standard fields in the order
#: of STANDARD_FIELDS, custom attributes as stored JSON text)`. A bare tuple: a bulk import builds
#: 100,000s of them.
NewUser = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Summary:
    """A user's custom events or purchases of one name: first and last time, count."""

    name: str
    first: float
    last: float
    count: int


@dataclass(slots=True)
class Activity:
    """What an export shows besides the profile: devices, event and purchase summaries."""

    devices: list[str] = field(default_factory=list)
    events: list[Summary] = field(default_factory=list)
    purchases: list[Summary] = field(default_factory=list)


class UserRepository(Protocol):
    """Users, aliases, devices, custom events and purchases."""

    def load(self, workspace_id: str, lookup: Lookup, *, lock: bool = False) -> Loaded: ...
    def apply(self, workspace_id: str, changes: ChangeSet, *, now: float) -> dict[int, int]: ...
    def delete(self, workspace_id: str, user_nums: list[int]) -> int: ...
    def insert_new(self, workspace_id: str, new: Sequence[NewUser], *, now: float) -> None: ...
    def activity(self, workspace_id: str, user_nums: list[int]) -> dict[int, Activity]: ...


class Outbox(Protocol):
    """Events written in the same transaction."""

    def append(self, workspace_id: str, events: Iterable[Envelope], *, now: float) -> int: ...


class IdentityUnitOfWork(Protocol):
    """A transaction that can see users and write the outbox."""

    @property
    def users(self) -> UserRepository: ...
    @property
    def outbox(self) -> Outbox: ...

    def commit(self) -> None: ...
