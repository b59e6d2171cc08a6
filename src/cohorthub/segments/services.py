"""Segment use cases: define, list, evaluate, page members, explain, record history."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pyroaring import BitMap

from cohorthub.cohorts.membership import MembershipCache
from cohorthub.cohorts.services import cohort_bitmap, memberships_of
from cohorthub.errors import InvalidInput, NotFound
from cohorthub.partners.services import get_partner
from cohorthub.segments.errors import InvalidSegment, SegmentCycle, SegmentNotFound, SegmentUserNotFound
from cohorthub.segments.history import HistoryPoint
from cohorthub.segments.indexes import KnownSegment, SegmentIndexes
from cohorthub.segments.model import (
    FILTER_VERSION,
    CohortLeaf,
    EventLeaf,
    Node,
    dump_filter,
    iter_leaves,
    parse_filter,
    referenced_segments,
)
from cohorthub.segments.ports import SegmentRecord, SegmentRepository, SegmentUnitOfWork
from cohorthub.segments.reference import explain
from cohorthub.segments.text import describe, find_path
from cohorthub.text import storable_problem

SNAPSHOTS_KEPT = 48
MAX_PAGE = 1000

_LAST_NUM = 2**32 - 1  # user numbers are 32-bit in membership bitmaps


@dataclass(frozen=True, slots=True)
class SegmentDraft:
    """What a client sends to create or replace a segment."""

    name: Any
    filter: Any
    description: Any = ""
    tags: Any = ()
    filter_version: Any = FILTER_VERSION
    analytics_tracking_enabled: Any = False


def create_segment(
    *, uow: SegmentUnitOfWork, workspace_id: str, draft: SegmentDraft, now: float
) -> SegmentRecord:
    """Validate and store a new segment."""
    segment_id = str(uuid.uuid4())
    record = _validated(uow.segments, workspace_id, segment_id, draft, now=now, created_at=now)
    record = replace(record, pk=uow.segments.add(record))
    uow.commit()
    return record


def update_segment(
    *, uow: SegmentUnitOfWork, workspace_id: str, segment_id: str, draft: SegmentDraft, now: float
) -> SegmentRecord:
    """Replace a segment's definition (rejecting cycles through membership leaves)."""
    old = require_segment(uow=uow, workspace_id=workspace_id, segment_id=segment_id)
    record = _validated(uow.segments, workspace_id, segment_id, draft, now=now, created_at=old.created_at)
    record = replace(record, pk=old.pk, archived_at=old.archived_at)
    uow.segments.update(record)
    uow.commit()
    return record


def set_archived(
    *, uow: SegmentUnitOfWork, workspace_id: str, segment_id: str, archived: bool, now: float
) -> SegmentRecord:
    """Archive or unarchive a segment (archived segments still evaluate for their users)."""
    old = require_segment(uow=uow, workspace_id=workspace_id, segment_id=segment_id)
    record = replace(old, archived_at=now if archived else None, updated_at=now)
    uow.segments.update(record)
    uow.commit()
    return record


def list_segments(
    *, uow: SegmentUnitOfWork, workspace_id: str, include_archived: bool
) -> list[SegmentRecord]:
    """Every segment of the workspace, oldest first."""
    return [s for s in uow.segments.all(workspace_id) if include_archived or s.archived_at is None]


def require_segment(*, uow: SegmentUnitOfWork, workspace_id: str, segment_id: str) -> SegmentRecord:
    """The segment, or `SegmentNotFound`."""
    record = uow.segments.get(workspace_id, segment_id)
    if record is None:
        raise SegmentNotFound(f"No segment with id {segment_id}")
    return record


def describe_segment(*, uow: SegmentUnitOfWork, record: SegmentRecord) -> tuple[str, dict[str, Any]]:
    """The text description and the filter with each cohort leaf's current name."""
    node = parse_filter(record.filter)
    names: dict[tuple[str, str], str] = {}
    for leaf in iter_leaves(node):
        if isinstance(leaf, CohortLeaf) and (
            state := uow.segments.cohort_state(record.workspace_id, leaf.partner, leaf.cohort_id)
        ):
            names[(leaf.partner, leaf.cohort_id)] = state.name
    segment_names = {
        s: r.name for s in referenced_segments(node) if (r := uow.segments.get(record.workspace_id, s))
    }
    text = describe(node, cohort_names=names, segment_names=segment_names)
    return text, _with_names(record.filter, names)


def _with_names(raw: Any, names: dict[tuple[str, str], str]) -> Any:
    if isinstance(raw, list):
        return [_with_names(x, names) for x in raw]
    if not isinstance(raw, dict):
        return raw
    out = {k: _with_names(v, names) for k, v in raw.items()}
    if raw.get("type") == "cohort" and (name := names.get((raw["partner"], raw["cohort_id"]))):
        out["cohort_name"] = name
    return out


def evaluate_segment(
    *,
    uow: SegmentUnitOfWork,
    indexes: SegmentIndexes,
    membership: MembershipCache,
    workspace_id: str,
    segment_id: str,
    now: float,
) -> tuple[SegmentRecord, BitMap]:
    """The segment and its exact members now.

    The definition parsed at the previous evaluation serves while the catch-up probe finds the segment and
    every segment it uses unchanged in storage (no statement of its own); else it is read again.
    """
    known = indexes.known_definition(workspace_id, segment_id)
    if known is not None:
        members, stored = _evaluate(
            uow, indexes, membership, workspace_id, known.node, known.definitions, now, check=known.stored
        )
        if all(i in stored and _unchanged(stored[i], known.stored[i]) for i in known.stored):
            return known.record, members
    record = require_segment(uow=uow, workspace_id=workspace_id, segment_id=segment_id)
    node = parse_filter(record.filter)
    seen = {record.id: (record.filter, record.updated_at)}
    definitions = _resolve(uow.segments, workspace_id, node, seen)
    indexes.remember_definition(workspace_id, segment_id, KnownSegment(record, node, definitions, seen))
    members, _ = _evaluate(uow, indexes, membership, workspace_id, node, definitions, now)
    return record, members


def _unchanged(stored: tuple[str, float], known: tuple[Any, float]) -> bool:
    """Whether a segment's stored (filter text, updated_at) is what a definition was parsed from."""
    return stored[1] == known[1] and json.loads(stored[0]) == known[0]


#: A filter every user matches (the workspace's whole population).
_EVERYONE: dict[str, Any] = {
    "or": [
        {"type": "identity", "field": "external_id", "op": "exists"},
        {"not": {"type": "identity", "field": "external_id", "op": "exists"}},
    ]
}


def check_filter(*, uow: SegmentUnitOfWork, workspace_id: str, raw: Any) -> None:
    """Validate an ad-hoc filter (a campaign's audience): syntax, cohorts and segments it names."""
    _check_references(uow.segments, workspace_id, "", parse_filter(raw), raw)


def evaluate_filter(
    *,
    uow: SegmentUnitOfWork,
    indexes: SegmentIndexes,
    membership: MembershipCache,
    workspace_id: str,
    raw: Any | None,
    now: float,
) -> BitMap:
    """The exact members of an ad-hoc filter now (None: every user of the workspace)."""
    node = parse_filter(_EVERYONE if raw is None else raw)
    if raw is not None:
        _check_references(uow.segments, workspace_id, "", node, raw)
    definitions = _resolve(uow.segments, workspace_id, node)
    members, _ = _evaluate(uow, indexes, membership, workspace_id, node, definitions, now)
    return members


def _evaluate(
    uow: SegmentUnitOfWork,
    indexes: SegmentIndexes,
    membership: MembershipCache,
    workspace_id: str,
    node: Node,
    definitions: Mapping[str, Node],
    now: float,
    *,
    check: Collection[str] = (),
) -> tuple[BitMap, Mapping[str, tuple[str, float]]]:
    """The members, and the stored (filter text, updated_at) of the segments `check`, by one probe."""

    def cohort_members(partner: str, cohort_id: str, state: tuple[int, int] | None) -> BitMap:
        """The held bitmap when it is at the version the probe read or newer (an import of this process
        that committed since); else the cohort caught up from its log. A cohort that is gone, or of a
        partner no longer known, is empty."""
        try:
            get_partner(partner)
        except (NotFound, InvalidInput):
            return BitMap()
        if state is None:
            return BitMap()
        held = membership.held(state[0])
        if held is not None and held.version >= state[1]:
            return held.bitmap
        try:
            return cohort_bitmap(
                uow=uow, cache=membership, workspace_id=workspace_id, partner=partner, cohort_id=cohort_id
            )
        except (NotFound, InvalidInput):
            return BitMap()

    return indexes.evaluate(
        uow.segments,
        cohorts=cohort_members,
        workspace_id=workspace_id,
        node=node,
        definitions=definitions,
        now=now,
        segments=check,
    )


def history_point(
    *, indexes: SegmentIndexes, record: SegmentRecord, members: BitMap, now: float
) -> HistoryPoint | None:
    """The size-history point a read of `members` makes, if one is due (with a snapshot when due)."""
    due = indexes.history_due(record.pk, len(members), now=now)
    if due is None:
        return None
    return HistoryPoint(record.pk, now, len(members), members.serialize() if due else None)


def record_history(*, uow: SegmentUnitOfWork, points: list[HistoryPoint]) -> None:
    """Append size-history points and their membership snapshots, in one transaction."""
    for point in points:
        uow.segments.record_size(point.segment_pk, at=point.at, size=point.size)
        if point.snapshot is not None:
            pk, blob = point.segment_pk, point.snapshot
            uow.segments.add_snapshot(pk, at=point.at, bitmap=blob, keep=SNAPSHOTS_KEPT)
    uow.commit()


def segment_changes(
    *, uow: SegmentUnitOfWork, record: SegmentRecord, members: BitMap, since: float
) -> tuple[float | None, BitMap, BitMap]:
    """(snapshot time, entered, left) between the newest snapshot at or before `since` and now."""
    found = uow.segments.snapshot_at(record.pk, since)
    if found is None:
        return None, BitMap(members), BitMap()
    at, blob = found
    before = BitMap.deserialize(blob)
    return at, members - before, before - members


def page_members(
    *, uow: SegmentUnitOfWork, members: BitMap, after: int, limit: int
) -> tuple[list[tuple[int, str, str | None]], int | None]:
    """Up to `limit` members with a number above `after`, and the cursor of the next page."""
    nums: list[int] = []
    following = members.iter_equal_or_larger(after + 1) if after < _LAST_NUM else iter(())
    for num in following:
        nums.append(num)
        if len(nums) >= limit:
            break
    rows = uow.segments.members(nums)
    more = len(nums) == limit and nums[-1] != members.max()
    return rows, (nums[-1] if more else None)


def find_member(
    *, uow: SegmentUnitOfWork, workspace_id: str, members: BitMap, external_id: str
) -> tuple[bool, list[tuple[int, str, str | None]]]:
    """Whether a user with that external id exists, and its row when it is a member."""
    num = uow.segments.user_num(workspace_id, external_id)
    if num is None or num not in members:
        return num is not None, []
    return True, uow.segments.members([num])


def size_history(
    *, uow: SegmentUnitOfWork, workspace_id: str, segment_id: str, since: float
) -> list[tuple[float, int]]:
    """The recorded sizes of a segment since `since`, oldest first."""
    record = require_segment(uow=uow, workspace_id=workspace_id, segment_id=segment_id)
    return uow.segments.sizes(record.pk, since=since)


def explain_user(
    *,
    uow: SegmentUnitOfWork,
    membership: MembershipCache,
    workspace_id: str,
    segment_id: str,
    external_id: str,
    now: float,
) -> dict[str, Any]:
    """Which leaves matched or failed for one user, by the reference evaluator."""
    record = require_segment(uow=uow, workspace_id=workspace_id, segment_id=segment_id)
    num = uow.segments.user_num(workspace_id, external_id)
    if num is None:
        raise SegmentUserNotFound(f"No user with external_id {external_id}")
    node, definitions = _definitions(uow.segments, record)
    leaves = [leaf for n in [node, *definitions.values()] for leaf in iter_leaves(n)]
    names = {
        leaf.name for leaf in leaves if isinstance(leaf, EventLeaf) and leaf.kind == "event" and leaf.name
    }
    wants = any(isinstance(leaf, EventLeaf) and leaf.kind == "purchase" for leaf in leaves)
    (facts,) = uow.segments.user_facts(workspace_id, [num], events=names, purchases=wants)
    inside = memberships_of(uow=uow, cache=membership, workspace_id=workspace_id, user_nums=[num])[num]
    facts = replace(facts, cohorts=frozenset((c["partner"], c["cohort_id"]) for c in inside))
    return explain(node, facts, now=now, definitions=definitions)


def _definitions(repo: SegmentRepository, record: SegmentRecord) -> tuple[Node, dict[str, Node]]:
    node = parse_filter(record.filter)
    return node, _resolve(repo, record.workspace_id, node)


def _resolve(
    repo: SegmentRepository,
    workspace_id: str,
    node: Node,
    seen: dict[str, tuple[Any, float]] | None = None,
) -> dict[str, Node]:
    """The definitions of every segment `node` uses, directly or not; `seen` gets (filter, updated_at)."""
    definitions: dict[str, Node] = {}
    pending = sorted(referenced_segments(node))
    while pending:
        segment_id = pending.pop()
        if segment_id in definitions:
            continue
        other = repo.get(workspace_id, segment_id)
        if other is None:
            raise SegmentNotFound(f"No segment with id {segment_id}")
        definitions[segment_id] = parse_filter(other.filter)
        if seen is not None:
            seen[segment_id] = (other.filter, other.updated_at)
        pending.extend(referenced_segments(definitions[segment_id]))
    return definitions


def _validated(
    repo: SegmentRepository,
    workspace_id: str,
    segment_id: str,
    draft: SegmentDraft,
    *,
    now: float,
    created_at: float,
) -> SegmentRecord:
    if not isinstance(draft.name, str) or not draft.name.strip() or len(draft.name) > 200:
        raise InvalidSegment("name", "must be a string of 1 to 200 characters")
    if not isinstance(draft.description, str):
        raise InvalidSegment("description", "must be a string")
    if not isinstance(draft.tags, list | tuple) or not all(isinstance(t, str) and t for t in draft.tags):
        raise InvalidSegment("tags", "must be an array of non-empty strings")
    texts = [("name", draft.name), ("description", draft.description)]
    for path, text in texts + [(f"tags[{i}]", tag) for i, tag in enumerate(draft.tags)]:
        if problem := storable_problem(text):
            raise InvalidSegment(path, problem)
    if not isinstance(draft.analytics_tracking_enabled, bool):
        raise InvalidSegment("analytics_tracking_enabled", "must be true or false")
    if draft.filter_version != FILTER_VERSION or isinstance(draft.filter_version, bool):
        raise InvalidSegment("filter_version", f"must be {FILTER_VERSION}")
    node = parse_filter(draft.filter)
    _check_references(repo, workspace_id, segment_id, node, draft.filter)
    return SegmentRecord(
        pk=0,
        id=segment_id,
        workspace_id=workspace_id,
        name=draft.name.strip(),
        description=draft.description,
        tags=tuple(draft.tags),
        filter=dump_filter(node),
        filter_version=FILTER_VERSION,
        analytics_tracking_enabled=draft.analytics_tracking_enabled,
        created_at=created_at,
        updated_at=now,
    )


def _check_references(
    repo: SegmentRepository, workspace_id: str, segment_id: str, node: Node, raw: Any
) -> None:
    for leaf in iter_leaves(node):
        if (
            isinstance(leaf, CohortLeaf)
            and repo.cohort_state(workspace_id, leaf.partner, leaf.cohort_id) is None
        ):
            path = _path_of(raw, "cohort_id", leaf.cohort_id)
            raise InvalidSegment(f"{path}.cohort_id", f"no {leaf.partner} cohort with id {leaf.cohort_id}")
    graph = {s.id: referenced_segments(parse_filter(s.filter)) for s in repo.all(workspace_id)}
    graph[segment_id] = referenced_segments(node)
    for ref in sorted(graph[segment_id]):
        path = _path_of(raw, "segment_id", ref)
        if ref not in graph:
            raise InvalidSegment(f"{path}.segment_id", f"no segment with id {ref}")
        if (chain := _cycle(graph, ref, segment_id)) is not None:
            raise SegmentCycle(
                f"{path}.segment_id", "segments would include each other: " + " → ".join(chain)
            )


def _path_of(raw: Any, key: str, value: str) -> str:
    return find_path(raw, lambda leaf: leaf.get(key) == value) or "filter"


def _cycle(graph: dict[str, set[str]], start: str, target: str) -> list[str] | None:
    stack: list[tuple[str, list[str]]] = [(start, [target, start])]
    seen: set[str] = set()
    while stack:
        current, chain = stack.pop()
        if current == target:
            return chain
        if current in seen:
            continue
        seen.add(current)
        stack.extend((nxt, [*chain, nxt]) for nxt in sorted(graph.get(current, ())))
    return None
