"""Users and their identifiers as pure values, and the rules that do not need storage.

A user is anonymous until it has an `external_id`; it may hold any number of aliases
(`alias_label` + `alias_name`, the name unique per label in a workspace) and device ids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cohorthub.clock import format_iso, parse_iso
from cohorthub.ids import object_ids
from cohorthub.text import storable_problem

#: A profile's custom attributes as stored: compact JSON text (bytes), keys sorted.
encode_custom = msgspec.json.Encoder(order="sorted").encode

#: Longest identifier (external id, alias label or name, device id, braze id) we accept.
MAX_ID_LENGTH = 512

#: Standard profile fields and the longest value each may hold.
STANDARD_FIELDS: dict[str, int] = {
    "email": 320,
    "phone": 64,
    "first_name": 256,
    "last_name": 256,
    "gender": 16,
    "dob": 10,
    "country": 64,
    "home_city": 256,
    "language": 32,
    "time_zone": 64,
    "email_subscribe": 16,
}


def is_finite(number: int | float) -> bool:
    """Whether `number` is finite as a float: not NaN or infinite, nor an integer past ±1.8e308."""
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer too large to convert to a float
        return False


@dataclass(frozen=True, slots=True, order=True)
class UserAlias:
    """`alias_label` is the key ("email"), `alias_name` the value."""

    label: str
    name: str

    def wire(self) -> dict[str, str]:
        """The Braze user alias object."""
        return {"alias_name": self.name, "alias_label": self.label}


@dataclass(slots=True)
class Profile:
    """One user as the identity rules see it; `num` is negative until the user is stored."""

    num: int
    braze_id: str
    external_id: str | None
    created_at: float
    updated_at: float
    fields: dict[str, str | None] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    aliases: set[UserAlias] = field(default_factory=set)

    @property
    def anonymous(self) -> bool:
        """True until the user has an external id."""
        return self.external_id is None

    def get(self, name: str) -> str | None:
        """A standard field's value (None when unset)."""
        return self.fields.get(name)


def new_braze_id(now: float) -> str:
    """A 24-hex id shaped like Braze's (an object id: creation second, process, counter)."""
    return object_ids(now, 1)[0]


def new_braze_ids(now: float, count: int) -> list[str]:
    """`count` ids shaped as `new_braze_id` makes them, consecutive: they append to the id index."""
    return object_ids(now, count)


def text_problem(
    value: object, *, what: str, max_length: int = MAX_ID_LENGTH, allow_empty: bool = False
) -> str | None:
    """Why `value` is not a usable string (non-empty unless allowed), or None when it is."""
    if (
        type(value) is str
        and value.isascii()
        and len(value) <= max_length
        and "\x00" not in value
        and (allow_empty or (value and not value.isspace()))
    ):
        return None  # the common case, decided without encoding
    if not isinstance(value, str):
        return f"{what} must be a string"
    if not allow_empty and not value.strip():
        return f"{what} must not be empty"
    if len(value) > max_length:
        return f"{what} is longer than {max_length} characters"
    problem = storable_problem(value)
    return f"{what} {problem}" if problem else None


def parse_time(value: object, *, now: float | None = None) -> float:
    """ISO-8601 text to Unix seconds (UTC when no offset); times after `now` become `now`."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("must be an ISO-8601 date-time string")
    try:
        seconds = parse_iso(value.strip())
    except ValueError:
        raise ValueError("must be an ISO-8601 date-time string") from None
    return min(seconds, now) if now is not None else seconds


def iso_time(seconds: float) -> str:
    """Unix seconds as ISO-8601 UTC with milliseconds, e.g. `2024-01-02T03:04:05.000Z`."""
    return format_iso(seconds)


def merge_blocked(orphan: Profile, target: Profile) -> bool:
    """The documented no-merge case: the target already has an alias with a label the orphan uses."""
    target_labels = {a.label for a in target.aliases}
    return any(a.label in target_labels for a in orphan.aliases)


def merge_into(orphan: Profile, target: Profile) -> None:
    """Copy onto `target` the standard fields and custom attributes found only on `orphan`."""
    for name, value in orphan.fields.items():
        if value is not None and target.fields.get(name) is None:
            target.fields[name] = value
    for key, value in orphan.custom.items():
        target.custom.setdefault(key, value)
    target.aliases |= orphan.aliases
    orphan.aliases = set()


def pick(candidates: list[Profile], prioritization: tuple[str, ...]) -> Profile | None:
    """The one user `prioritization` selects among `candidates`; None when none or several remain."""
    rest = list(candidates)
    for rule in prioritization:
        if rule == "identified":
            rest = [p for p in rest if not p.anonymous]
        elif rule == "unidentified":
            rest = [p for p in rest if p.anonymous]
        elif rest:
            best = max if rule == "most_recently_updated" else min
            edge = best(p.updated_at for p in rest)
            rest = [p for p in rest if p.updated_at == edge]
    return rest[0] if len(rest) == 1 else None
