"""Cohort import requests and cohorts as pure values: parsing with the documented 400 texts.

Parsing follows the wire shape partners really send (separate `user_ids`, `device_ids` and
`aliases` keys per change object, empty arrays, `should_remove` true/false/null/absent) and
raises `InvalidCohortRequest` with the verbatim message plus an `errors` entry naming the path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyroaring import AbstractBitMap, BitMap

from cohorthub.clock import parse_iso
from cohorthub.cohorts.errors import (
    BODY_TEXT,
    COHORT_CHANGES_TEXT,
    COHORT_ID_TEXT,
    CREATED_AT_TEXT,
    NAME_TEXT,
    TOO_MANY_TEXT,
    InvalidCohortRequest,
)
from cohorthub.text import storable_problem

MAX_IDENTIFIERS_PER_REQUEST = 1_000
MAX_COHORT_ID_LENGTH = 512
MAX_NAME_LENGTH = 1_024
ID_KINDS = ("user_ids", "device_ids", "aliases")
UNMATCHED_SAMPLE_SIZE = 20

Alias = tuple[str, str]  # (alias_label, alias_name)


@dataclass(frozen=True, slots=True)
class CohortName:
    """A parsed `POST /partners/{partner}/cohorts` body."""

    cohort_id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class CohortChange:
    """One `cohort_changes[]` element: identifiers to add, or to remove when `remove`."""

    remove: bool
    user_ids: list[str]
    device_ids: list[str]
    aliases: list[Alias]

    def size(self) -> int:
        """How many identifiers this change names (each alias object counts once)."""
        return len(self.user_ids) + len(self.device_ids) + len(self.aliases)


@dataclass(frozen=True, slots=True)
class CohortChanges:
    """A parsed `POST /partners/{partner}/cohorts/users` body."""

    cohort_id: str
    changes: list[CohortChange]

    def identifiers(self) -> int:
        """Σ over all change objects of user_ids + device_ids + aliases."""
        return sum(change.size() for change in self.changes)


@dataclass(frozen=True, slots=True)
class Cohort:
    """A partner cohort of a workspace as stored, with its import diagnostics."""

    pk: int
    workspace_id: str
    partner: str
    cohort_id: str
    name: str
    named: bool
    partner_created_at: float | None
    created_at: float
    updated_at: float
    version: int
    size: int
    snapshot_version: int
    last_import_at: float | None
    import_requests: int
    identifiers_matched: int
    identifiers_unmatched: int
    unmatched_sample: list[str]


def parse_time(value: object) -> float:
    """An ISO-8601 string as Unix seconds; a time without an offset is taken as UTC."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidCohortRequest(CREATED_AT_TEXT)
    try:
        return parse_iso(value.strip())
    except ValueError as exc:
        raise InvalidCohortRequest(
            CREATED_AT_TEXT, f"`created_at` is not an ISO-8601 time from year 1 to 9999: {value!r}"
        ) from exc


def require_object(body: object) -> dict[str, Any]:
    """The request body as a JSON object: `[]`, `null` or a scalar is a malformed request."""
    if not isinstance(body, dict):
        kind = {list: "an array", type(None): "null", str: "a string", bool: "a boolean"}.get(
            type(body), "a number"
        )
        raise InvalidCohortRequest(BODY_TEXT, f"the body is {kind}, not an object")
    return body


def parse_cohort_id(body: dict[str, Any]) -> str:
    """The body's `cohort_id`: a non-empty string of at most 512 characters."""
    value = body.get("cohort_id")
    if not isinstance(value, str) or not value:
        raise InvalidCohortRequest(COHORT_ID_TEXT)
    if len(value) > MAX_COHORT_ID_LENGTH:
        raise InvalidCohortRequest(
            COHORT_ID_TEXT, f"`cohort_id` is longer than {MAX_COHORT_ID_LENGTH} characters"
        )
    if problem := storable_problem(value):
        raise InvalidCohortRequest(COHORT_ID_TEXT, f"`cohort_id` {problem}")
    return value


def parse_cohort_name(body: dict[str, Any]) -> CohortName:
    """Validate a cohort name body in the documented order: cohort_id, name, created_at."""
    cohort_id = parse_cohort_id(body)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidCohortRequest(NAME_TEXT)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidCohortRequest(NAME_TEXT, f"`name` is longer than {MAX_NAME_LENGTH} characters")
    if problem := storable_problem(name):
        raise InvalidCohortRequest(NAME_TEXT, f"`name` {problem}")
    return CohortName(cohort_id=cohort_id, name=name, created_at=parse_time(body.get("created_at")))


def parse_cohort_changes(body: dict[str, Any], *, identifier_max_length: int) -> CohortChanges:
    """Validate a user cohort body: cohort_id, then shape, then the 1,000 limit, then identifiers."""
    cohort_id = parse_cohort_id(body)
    raw = body.get("cohort_changes")
    if not isinstance(raw, list):
        raise InvalidCohortRequest(COHORT_CHANGES_TEXT, "`cohort_changes` is not an array")
    changes = [_parse_change(item, i) for i, item in enumerate(raw)]
    parsed = CohortChanges(cohort_id=cohort_id, changes=changes)
    if parsed.identifiers() > MAX_IDENTIFIERS_PER_REQUEST:
        raise InvalidCohortRequest(TOO_MANY_TEXT, f"the request names {parsed.identifiers()} identifiers")
    for i, change in enumerate(changes):
        _check_lengths(change, i, identifier_max_length)
    return parsed


def _shape_error(detail: str) -> InvalidCohortRequest:
    return InvalidCohortRequest(COHORT_CHANGES_TEXT, detail)


def _parse_change(item: object, i: int) -> CohortChange:
    where = f"cohort_changes[{i}]"
    if not isinstance(item, dict):
        raise _shape_error(f"`{where}` is not an object")
    present = [kind for kind in ID_KINDS if item.get(kind) is not None]
    if not present:
        raise _shape_error(f"`{where}` has none of `user_ids`, `device_ids`, `aliases`")
    remove = item.get("should_remove")
    if remove is not None and not isinstance(remove, bool):
        raise _shape_error(f"`{where}.should_remove` is not a boolean")
    return CohortChange(
        remove=bool(remove),
        user_ids=_strings(item.get("user_ids"), f"{where}.user_ids"),
        device_ids=_strings(item.get("device_ids"), f"{where}.device_ids"),
        aliases=_aliases(item.get("aliases"), f"{where}.aliases"),
    )


def _strings(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _shape_error(f"`{where}` is not an array")
    if not all(type(v) is str for v in value):
        bad = next(j for j, v in enumerate(value) if not isinstance(v, str))
        raise _shape_error(f"`{where}[{bad}]` is not a string")
    return value


def _aliases(value: object, where: str) -> list[Alias]:
    if value is None:
        return []
    items = [value] if isinstance(value, dict) else value  # the error text says "an `aliases` object"
    if not isinstance(items, list):
        raise _shape_error(f"`{where}` is not an array of alias objects")
    aliases: list[Alias] = []
    for j, alias in enumerate(items):
        label = alias.get("alias_label") if isinstance(alias, dict) else None
        name = alias.get("alias_name") if isinstance(alias, dict) else None
        if not isinstance(label, str) or not isinstance(name, str):
            raise _shape_error(f"`{where}[{j}]` needs string `alias_label` and `alias_name`")
        aliases.append((label, name))
    return aliases


def _check_lengths(change: CohortChange, i: int, limit: int) -> None:
    for kind, values in (("user_ids", change.user_ids), ("device_ids", change.device_ids)):
        if values and (min(map(len, values)) == 0 or max(map(len, values)) > limit):
            j = next(j for j, v in enumerate(values) if not 0 < len(v) <= limit)
            raise _identifier_error(f"cohort_changes[{i}].{kind}[{j}]", limit)
        for j, value in enumerate(values):
            if problem := storable_problem(value):
                raise _identifier_error(f"cohort_changes[{i}].{kind}[{j}]", limit, problem)
    for j, (label, name) in enumerate(change.aliases):
        for key, text in (("alias_label", label), ("alias_name", name)):
            if not 0 < len(text) <= limit or storable_problem(text):
                raise _identifier_error(
                    f"cohort_changes[{i}].aliases[{j}].{key}", limit, storable_problem(text)
                )


def _identifier_error(path: str, limit: int, problem: str | None = None) -> InvalidCohortRequest:
    return InvalidCohortRequest(
        f"`{path}` must be a non-empty string of at most {limit} characters",
        f"`{path}` {problem}" if problem else f"`{path}` is empty or longer than {limit} characters",
    )


@dataclass(frozen=True, slots=True)
class Matches:
    """Which identifiers of a request name existing users (`users.num`)."""

    external_ids: dict[str, int]
    device_ids: dict[str, int]  # anonymous users (no external_id) only
    aliases: dict[Alias, int]


@dataclass(frozen=True, slots=True)
class MembershipDiff:
    """What applying a request to the current set does, and how well its identifiers matched."""

    entered: BitMap
    left: BitMap
    matched: int
    unmatched: int
    unmatched_sample: list[str]


def distinct_identifiers(request: CohortChanges) -> tuple[set[str], set[str], set[Alias]]:
    """Every distinct external id, device id and alias the request names."""
    user_ids: set[str] = set()
    device_ids: set[str] = set()
    aliases: set[Alias] = set()
    for change in request.changes:
        user_ids.update(change.user_ids)
        device_ids.update(change.device_ids)
        aliases.update(change.aliases)
    return user_ids, device_ids, aliases


def diff_membership(request: CohortChanges, matches: Matches, current: AbstractBitMap) -> MembershipDiff:
    """Apply the change objects in order (a later one wins for a user) and diff against `current`."""
    add, remove = BitMap(), BitMap()
    matched = unmatched = 0
    sample: list[str] = []
    for change in request.changes:
        nums: list[int] = []
        for kind, values, lookup in (
            ("user_ids", change.user_ids, matches.external_ids),
            ("device_ids", change.device_ids, matches.device_ids),
        ):
            found = [n for n in map(lookup.get, values) if n is not None]
            nums.extend(found)
            if len(found) < len(values):
                unmatched += len(values) - len(found)
                _sample(sample, (f"{kind}:{v}" for v in values if v not in lookup))
        found_aliases = [n for n in map(matches.aliases.get, change.aliases) if n is not None]
        nums.extend(found_aliases)
        if len(found_aliases) < len(change.aliases):
            unmatched += len(change.aliases) - len(found_aliases)
            missing = (f"aliases:{lb}={nm}" for lb, nm in change.aliases if (lb, nm) not in matches.aliases)
            _sample(sample, missing)
        matched += len(nums)
        users = BitMap(nums)
        if change.remove:
            remove |= users
            add -= users
        else:
            add |= users
            remove -= users
    return MembershipDiff(
        entered=add - current,
        left=remove & current,
        matched=matched,
        unmatched=unmatched,
        unmatched_sample=sample,
    )


def _sample(sample: list[str], items: Any) -> None:
    for item in items:
        if len(sample) >= UNMATCHED_SAMPLE_SIZE:
            return
        if item not in sample:
            sample.append(item)


def merge_unmatched_sample(old: list[str], new: list[str]) -> list[str]:
    """The newest distinct unmatched identifiers, newest last, at most `UNMATCHED_SAMPLE_SIZE`."""
    kept = [item for item in old if item not in new] + new
    return kept[-UNMATCHED_SAMPLE_SIZE:]
