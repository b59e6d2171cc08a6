"""Cohort use cases: name a cohort, import membership changes, read cohorts and members.

Every write runs in one transaction: the membership log rows, the cohort's version, size and
diagnostics, the import request record and the partner's quota count commit together, so a
2xx means the change is durable. The quota is charged last, because on PostgreSQL its counter
row stays locked until commit and every request of a partner key shares it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyroaring import AbstractBitMap, BitMap

from cohorthub.cohorts.errors import CohortNotFound
from cohorthub.cohorts.membership import Membership, MembershipCache, chunk_images
from cohorthub.cohorts.model import (
    Cohort,
    CohortChanges,
    Matches,
    MembershipDiff,
    diff_membership,
    distinct_identifiers,
    merge_unmatched_sample,
    parse_cohort_changes,
    parse_cohort_name,
    require_object,
)
from cohorthub.cohorts.ports import CohortChangeListener, CohortRepository, CohortUnitOfWork
from cohorthub.partners.model import PartnerCaller
from cohorthub.partners.services import authenticate_partner, charge_quota, get_partner


@dataclass(frozen=True, slots=True)
class NamedCohort:
    """The result of the cohort name endpoint."""

    cohort_id: str
    name: str
    created: bool


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The result of one user cohort request."""

    cohort_id: str
    request_id: str
    identifiers: int
    matched: int
    unmatched: int
    entered: int
    left: int
    size: int


@dataclass(frozen=True, slots=True)
class MembersPage:
    """One page of a cohort's members, in user number order."""

    members: list[dict[str, Any]]
    next_cursor: str | None


def _authenticate(uow: CohortUnitOfWork, partner: str, body: object, now: float) -> PartnerCaller:
    fields = require_object(body)  # the keys are fields of the body: no object, no keys to check
    return authenticate_partner(
        uow=uow,
        partner=partner,
        partner_api_key=fields.get("partner_api_key"),
        client_secret=fields.get("client_secret"),
        now=now,
    )


def name_cohort(*, uow: CohortUnitOfWork, partner: str, body: object, quota: int, now: float) -> NamedCohort:
    """Create a cohort or rename it (the partner's first `created_at` is kept)."""
    caller = _authenticate(uow, partner, body, now)
    assert isinstance(body, dict)
    request = parse_cohort_name(body)
    cohort, created = uow.cohorts.ensure(
        workspace_id=caller.workspace_id, partner=partner, cohort_id=request.cohort_id, now=now
    )
    created_at = cohort.partner_created_at if cohort.partner_created_at is not None else request.created_at
    uow.cohorts.rename(cohort.pk, name=request.name, partner_created_at=created_at, now=now)
    charge_quota(uow=uow, caller=caller, quota=quota, now=now)
    uow.commit()
    return NamedCohort(cohort_id=request.cohort_id, name=request.name, created=created)


def import_cohort_changes(
    *,
    uow: CohortUnitOfWork,
    cache: MembershipCache,
    partner: str,
    body: object,
    quota: int,
    identifier_max_length: int,
    compaction_threshold: int,
    request_id: str,
    now: float,
    listeners: Sequence[CohortChangeListener] = (),
) -> ImportResult:
    """Apply a user cohort request: users enter or leave, in the order of its change objects.

    Once it has committed a change, each of `listeners` is told which cohort changed.
    """
    caller = _authenticate(uow, partner, body, now)
    assert isinstance(body, dict)
    request = parse_cohort_changes(body, identifier_max_length=identifier_max_length)
    workspace_id, repo = caller.workspace_id, uow.cohorts
    if not request.identifiers() and repo.get(workspace_id, partner, request.cohort_id) is None:
        charge_quota(uow=uow, caller=caller, quota=quota, now=now)  # a credential probe names no cohort
        uow.commit()
        return ImportResult(request.cohort_id, request_id, 0, 0, 0, 0, 0, 0)
    # Users before the cohort: every writer takes user locks before cohort locks, so none deadlock.
    matches = _resolve(repo, workspace_id, *distinct_identifiers(request))
    cohort, _ = repo.ensure(workspace_id=workspace_id, partner=partner, cohort_id=request.cohort_id, now=now)
    try:
        after, diff = _apply_import(
            repo, cache, cohort, request, matches, request_id, now, compaction_threshold
        )
        charge_quota(uow=uow, caller=caller, quota=quota, now=now)
        uow.commit()
    except BaseException:
        # Under group commit the cache may have caught up to changes of the same transaction that
        # did not commit after all: forget the cohort rather than trust them.
        cache.forget(cohort.pk)
        raise
    cache.put(cohort.pk, after)
    entered, left = len(diff.entered), len(diff.left)
    if entered or left:
        for listener in listeners:
            listener.cohort_changed(workspace_id, partner, request.cohort_id)
    size = len(after.bitmap)
    return ImportResult(
        request.cohort_id,
        request_id,
        request.identifiers(),
        diff.matched,
        diff.unmatched,
        entered,
        left,
        size,
    )


def _apply_import(
    repo: CohortRepository,
    cache: MembershipCache,
    cohort: Cohort,
    request: CohortChanges,
    matches: Matches,
    request_id: str,
    now: float,
    compaction_threshold: int,
) -> tuple[Membership, MembershipDiff]:
    """Log who entered and left as the cohort's next version, and record the request."""
    before = cache.current(repo, cohort)
    diff = diff_membership(request, matches, before.bitmap)
    after = apply_membership_change(
        repo, cohort, before, diff.entered, diff.left,
        reason="import", request_id=request_id, now=now, compaction_threshold=compaction_threshold,
    )  # fmt: skip
    repo.record_import(
        cohort.pk,
        request_id=request_id,
        now=now,
        identifiers=request.identifiers(),
        matched=diff.matched,
        unmatched=diff.unmatched,
        entered=len(diff.entered),
        left=len(diff.left),
        unmatched_sample=merge_unmatched_sample(cohort.unmatched_sample, diff.unmatched_sample),
    )
    return after, diff


def _resolve(
    repo: CohortRepository, workspace_id: str, user_ids: set[str], device_ids: set[str], aliases: set[Any]
) -> Matches:
    """The users the identifiers name; those named by external id or device stay locked (users,
    then alias rows: the order of every writer of users)."""
    by_id, by_device = (
        repo.match_users(workspace_id, user_ids, device_ids) if user_ids or device_ids else ({}, {})
    )
    return Matches(
        external_ids=by_id,
        device_ids=by_device,
        aliases=repo.resolve_aliases(workspace_id, aliases) if aliases else {},
    )


def apply_membership_change(
    repo: CohortRepository,
    cohort: Cohort,
    before: Membership,
    entered: AbstractBitMap,
    left: AbstractBitMap,
    *,
    reason: str,
    request_id: str | None,
    now: float,
    compaction_threshold: int,
) -> Membership:
    """Log who entered and left as the cohort's next version; compact the touched chunks when due."""
    if not entered and not left:
        return before
    version = cohort.version + 1
    repo.append_changes(
        cohort.pk, version=version, entered=entered.to_array(), left=left.to_array(),
        at=now, request_id=request_id, reason=reason,
    )  # fmt: skip
    after = before.apply(version=version, entered=entered, left=left)
    repo.set_membership(cohort.pk, version=version, size=len(after.bitmap), now=now)
    if after.tail > compaction_threshold:
        repo.write_chunks(cohort.pk, chunk_images(after.bitmap, after.touched), snapshot_version=version)
        after = after.compacted()
    return after


def list_cohorts(*, uow: CohortUnitOfWork, workspace_id: str, partner: str | None) -> list[Cohort]:
    """A workspace's cohorts, optionally of one partner, by partner and name."""
    if partner is not None:
        get_partner(partner)
    return uow.cohorts.in_workspace(workspace_id, partner)


def _cohort(uow: CohortUnitOfWork, workspace_id: str, partner: str, cohort_id: str) -> Cohort:
    get_partner(partner)
    cohort = uow.cohorts.get(workspace_id, partner, cohort_id)
    if cohort is None:
        raise CohortNotFound(partner, cohort_id)
    return cohort


def cohort_members(
    *,
    uow: CohortUnitOfWork,
    cache: MembershipCache,
    workspace_id: str,
    partner: str,
    cohort_id: str,
    limit: int,
    after: int | None,
) -> MembersPage:
    """Up to `limit` members with a user number above `after`, and the cursor of the next page."""
    cohort = _cohort(uow, workspace_id, partner, cohort_id)
    bitmap = cache.current(uow.cohorts, cohort).bitmap
    start = bitmap.rank(after) if after is not None else 0
    nums = bitmap[start : start + limit]
    more = start + limit < len(bitmap)
    return MembersPage(
        members=uow.cohorts.members(nums.to_array()),
        next_cursor=str(nums.max()) if more and nums else None,
    )


def cohort_bitmap(
    *, uow: CohortUnitOfWork, cache: MembershipCache, workspace_id: str, partner: str, cohort_id: str
) -> BitMap:
    """The cohort's members as a bitmap of user numbers (a copy the caller may change)."""
    cohort = _cohort(uow, workspace_id, partner, cohort_id)
    return cache.current(uow.cohorts, cohort).bitmap.copy()


def memberships_of(
    *, uow: CohortUnitOfWork, cache: MembershipCache, workspace_id: str, user_nums: list[int]
) -> dict[int, list[dict[str, str]]]:
    """For each user number, the cohorts it is in: `{"partner", "cohort_id", "name"}`."""
    result: dict[int, list[dict[str, str]]] = {num: [] for num in user_nums}
    for cohort, bitmap in cohorts_holding(
        uow=uow, cache=cache, workspace_id=workspace_id, user_nums=user_nums
    ):
        item = {"partner": cohort.partner, "cohort_id": cohort.cohort_id, "name": cohort.name}
        for num in user_nums:
            if num in bitmap:
                result[num].append(item)
    return result


def cohorts_holding(
    *, uow: CohortUnitOfWork, cache: MembershipCache, workspace_id: str, user_nums: list[int]
) -> list[tuple[Cohort, BitMap]]:
    """The workspace's cohorts holding any of the users, with their current members.

    Answered from the in-memory bitmaps (caught up to each cohort's version), not from an index
    on the change log: such an index would be written in random order by every import.
    """
    wanted = BitMap(user_nums)
    held = []
    for cohort in uow.cohorts.in_workspace(workspace_id, None):
        bitmap = cache.current(uow.cohorts, cohort).bitmap
        if bitmap.intersection_cardinality(wanted):
            held.append((cohort, bitmap))
    return held


def changes_since(
    *, uow: CohortUnitOfWork, workspace_id: str, partner: str, cohort_id: str, since: float
) -> tuple[list[int], list[int]]:
    """Users who are in now but were not at `since` (entered), and the reverse (left)."""
    cohort = _cohort(uow, workspace_id, partner, cohort_id)
    first: dict[int, bool] = {}
    last: dict[int, bool] = {}
    for num, entered in uow.cohorts.changes_since(cohort.pk, since):
        first.setdefault(num, entered)
        last[num] = entered
    came = sorted(n for n, e in last.items() if e and first[n])
    went = sorted(n for n, e in last.items() if not e and not first[n])
    return came, went


def cohort_flow(
    *, uow: CohortUnitOfWork, workspace_id: str, partner: str, cohort_id: str, days: int, now: float
) -> list[tuple[float, int, int]]:
    """Users who entered and who left the cohort per UTC day, for the last `days` days: (day, in, out)."""
    cohort = _cohort(uow, workspace_id, partner, cohort_id)
    today = now - now % 86400
    totals = {today - i * 86400: [0, 0] for i in range(days)}
    for at, entered, left in uow.cohorts.import_flow(cohort.pk, today - (days - 1) * 86400):
        slot = totals.setdefault(at - at % 86400, [0, 0])
        slot[0] += entered
        slot[1] += left
    return [(day, came, went) for day, (came, went) in sorted(totals.items())]
