"""Identity use cases: track, identify, alias, delete and export users (one transaction each).

Each write use case loads every user its request names in one query, locking those identifiers
and users for the transaction, runs the rules in memory (`WorkSet`), writes the result set-based, tells the
identity listeners about merges and deletions, appends the Currents events to the outbox and
commits: all in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from cohorthub.currents import envelope
from cohorthub.identity.export import export_user
from cohorthub.identity.listeners import IdentityListener, Merge
from cohorthub.identity.lookups import parse_delete, parse_export, parse_identify, parse_new_aliases
from cohorthub.identity.model import Profile, UserAlias, pick
from cohorthub.identity.ports import IdentityUnitOfWork
from cohorthub.identity.requests import ItemError, Target, TrackBatch, parse_track
from cohorthub.identity.workset import ChangeSet, Lookup, WorkSet

#: `memberships(user_nums)` → each user's partner cohorts (`{"partner", "cohort_id", "name"}`).
Memberships = Callable[[list[int]], dict[int, list[dict[str, str]]]]


@dataclass(frozen=True, slots=True)
class TrackResult:
    """How many objects of each array were processed, and the non-fatal errors."""

    attributes_processed: int
    events_processed: int
    purchases_processed: int
    errors: list[ItemError]


@dataclass(frozen=True, slots=True)
class Resolved:
    """A user as stored: number, braze_id and external_id."""

    num: int
    braze_id: str
    external_id: str | None


@dataclass(frozen=True, slots=True)
class IdentifyResult:
    """How many profiles were identified (or merged) per array."""

    aliases_processed: int
    emails_processed: int
    phones_processed: int


@dataclass(frozen=True, slots=True)
class AliasResult:
    """How many aliases were added, and why the others were not."""

    aliases_processed: int
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The exported users and the identifiers that matched no one."""

    users: list[dict[str, Any]]
    invalid_user_ids: list[str]


def missing_user(target: Target) -> str:
    """Why an object naming `target` was skipped: no such user (and it may not be created)."""
    value = target.value
    shown = f"{value.label}/{value.name}" if isinstance(value, UserAlias) else value
    hint = "" if target.kind == "braze_id" else "; set _update_existing_only to false to create it"
    return f"no user with {target.kind} {shown!r}{hint}"


def track_users(
    *,
    uow: IdentityUnitOfWork,
    workspace_id: str,
    body: Any,
    listeners: Sequence[IdentityListener] = (),
    now: float,
) -> TrackResult:
    """`/users/track`: attributes, custom events and purchases of up to 75 objects each."""
    batch = parse_track(body, now=now)
    return record_track(uow=uow, workspace_id=workspace_id, batch=batch, listeners=listeners, now=now)


def record_track(
    *,
    uow: IdentityUnitOfWork,
    workspace_id: str,
    batch: TrackBatch,
    listeners: Sequence[IdentityListener] = (),
    now: float,
) -> TrackResult:
    """Apply and commit a `/users/track` batch parsed beforehand (outside the writer's turn)."""
    result, _ = apply_track(uow=uow, workspace_id=workspace_id, batch=batch, listeners=listeners, now=now)
    uow.commit()
    return result


def apply_track(
    *,
    uow: IdentityUnitOfWork,
    workspace_id: str,
    batch: TrackBatch,
    listeners: Sequence[IdentityListener] = (),
    visits: Sequence[Target] = (),
    now: float,
) -> tuple[TrackResult, list[Resolved | None]]:
    """Apply a parsed batch without committing (the users it touches are locked by identifier).

    `visits` are targets resolved first, in order, with the same rules (an SDK's sessions);
    their users are returned as stored after every merge of the batch.
    """
    targets = [*visits, *(i.target for i in batch.attributes), *(i.target for i in batch.events)]
    targets += [i.target for i in batch.purchases]
    ws = WorkSet(uow.users.load(workspace_id, Lookup.of(targets), lock=True), now=now)
    visited = [ws.resolve(t) for t in visits]
    for profile in visited:
        if profile is not None:
            ws.touch(profile)
    errors = list(batch.errors)
    attributes = _process(ws, "attributes", batch.attributes, lambda p, i: ws.update(p, i.update), errors)
    events = _process(ws, "events", batch.events, ws.record_event, errors)
    purchases = _process(ws, "purchases", batch.purchases, ws.record_purchase, errors)
    stored = write_changes(uow, ws, workspace_id, listeners, now)
    errors.sort(key=lambda e: (("attributes", "events", "purchases").index(e.input_array), e.index))
    resolved = [None if p is None else _resolved(ws, stored, p.num) for p in visited]
    return TrackResult(attributes, events, purchases, errors), resolved


def _resolved(ws: WorkSet, stored: dict[int, int], num: int) -> Resolved:
    profile = ws.profiles[ws.final(num)]
    return Resolved(stored.get(profile.num, profile.num), profile.braze_id, profile.external_id)


class _Item(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def target(self) -> Target: ...


ItemT = TypeVar("ItemT", bound=_Item)


def _process(
    ws: WorkSet,
    array: str,
    items: list[ItemT],
    action: Callable[[Profile, ItemT], None],
    errors: list[ItemError],
) -> int:
    """Resolve each object's user and apply it; count the processed, note why the others were not."""
    processed = 0
    for item in items:
        profile = ws.resolve(item.target)
        if profile is None:
            errors.append(ItemError(array, item.index, missing_user(item.target)))
            continue
        try:
            action(profile, item)
        except ValueError as exc:
            errors.append(ItemError(array, item.index, str(exc)))
            continue
        processed += 1
    return processed


def identify_users(
    *,
    uow: IdentityUnitOfWork,
    workspace_id: str,
    body: Any,
    listeners: Sequence[IdentityListener] = (),
    now: float,
) -> IdentifyResult:
    """`/users/identify`: identify alias-, email- or phone-only profiles, merging where the id exists."""
    items = parse_identify(body)
    lookup = Lookup(external_ids={i.external_id for i in items})
    for item in items:
        lookup.add(Target(kind=item.kind, value=item.value, create=False))
    ws = WorkSet(uow.users.load(workspace_id, lookup, lock=True), now=now)
    counts = {"user_alias": 0, "email": 0, "phone": 0}
    for item in items:
        if isinstance(item.value, UserAlias):
            profile = ws.find("user_alias", item.value)
        else:
            profile = pick(ws.with_field(item.kind, item.value), item.prioritization)
        if profile is not None and ws.identify(profile, item.external_id):
            counts[item.kind] += 1
    write_changes(uow, ws, workspace_id, listeners, now)
    uow.commit()
    return IdentifyResult(counts["user_alias"], counts["email"], counts["phone"])


def add_aliases(*, uow: IdentityUnitOfWork, workspace_id: str, body: Any, now: float) -> AliasResult:
    """`/users/alias/new`: add aliases to identified users, or create alias-only users."""
    items = parse_new_aliases(body)
    lookup = Lookup(
        external_ids={i.external_id for i in items if i.external_id is not None},
        aliases={i.alias for i in items},
    )
    ws = WorkSet(uow.users.load(workspace_id, lookup, lock=True), now=now)
    processed, errors = 0, []
    for index, item in enumerate(items):
        if problem := _add_alias(ws, item.alias, item.external_id):
            errors.append(f"user_aliases[{index}]: {problem}")
        else:
            processed += 1
    write_changes(uow, ws, workspace_id, (), now)
    uow.commit()
    return AliasResult(processed, errors)


def _add_alias(ws: WorkSet, alias: UserAlias, external_id: str | None) -> str | None:
    owner = ws.find("user_alias", alias)
    if external_id is None:
        if owner is None:
            ws.add_alias(ws.create(), alias)
        return None
    user = ws.find("external_id", external_id)
    if user is None:
        return f"no user with external_id {external_id!r}"
    if owner is not None:
        return None if owner is user else "the alias already belongs to another user"
    for same_label in [a for a in user.aliases if a.label == alias.label]:
        ws.drop_alias(user, same_label)
    ws.add_alias(user, alias)
    return None


def delete_users(
    *,
    uow: IdentityUnitOfWork,
    workspace_id: str,
    body: Any,
    listeners: Sequence[IdentityListener] = (),
    now: float,
) -> int:
    """`/users/delete`: remove users and everything recorded about them; return how many."""
    request = parse_delete(body)
    ids = request.ids
    lookup = Lookup(
        external_ids=set(ids.external_ids),
        aliases=set(ids.aliases),
        braze_ids=set(ids.braze_ids),
        emails={c.value for c in request.contacts if c.kind == "email"},
        phones={c.value for c in request.contacts if c.kind == "phone"},
    )
    ws = WorkSet(uow.users.load(workspace_id, lookup, lock=True), now=now)
    found = [ws.find("external_id", v) for v in ids.external_ids]
    found += [ws.find("user_alias", a) for a in ids.aliases]
    found += [ws.find("braze_id", v) for v in ids.braze_ids]
    found += [pick(ws.with_field(c.kind, c.value), c.prioritization) for c in request.contacts]
    deleted = {p.num: p for p in found if p is not None}
    nums = sorted(deleted)
    if nums:
        # The listeners lock what they will change first (a cohort import's order: cohort, then
        # users); the delete's row locks then make an import that matched these users finish (or
        # skip them) before the listeners read the memberships to undo.
        for listener in listeners:
            listener.users_leaving(uow, nums, workspace_id=workspace_id)
        uow.users.delete(workspace_id, nums)
        for listener in listeners:
            listener.users_deleted(uow, nums, workspace_id=workspace_id, now=now)
        requests = [
            envelope.user_delete_request(
                workspace_id=workspace_id, user=envelope.event_user(braze_id=deleted[n].braze_id), time=now
            )
            for n in nums
        ]
        uow.outbox.append(workspace_id, requests, now=now)
    uow.commit()
    return len(nums)


def export_users(
    *, uow: IdentityUnitOfWork, workspace_id: str, body: Any, memberships: Memberships | None = None
) -> ExportResult:
    """`/users/export/ids`: profiles, aliases, devices, event and purchase summaries, cohorts."""
    request = parse_export(body)
    ids = request.ids
    lookup = Lookup(
        external_ids=set(ids.external_ids),
        braze_ids=set(ids.braze_ids),
        aliases=set(ids.aliases),
        emails=set(ids.emails),
        phones=set(ids.phones),
        device_ids=set(ids.device_ids),
    )
    ws = WorkSet(uow.users.load(workspace_id, lookup), now=0.0)
    found: dict[int, Profile] = {}
    invalid: list[str] = []
    for kind, values in (
        ("external_id", ids.external_ids),
        ("user_alias", ids.aliases),
        ("device_id", ids.device_ids),
        ("braze_id", ids.braze_ids),
    ):
        for value in values:
            profile = ws.find(kind, value)
            if profile is not None:
                found.setdefault(profile.num, profile)
            elif isinstance(value, str):
                invalid.append(value)
    for kind, values in (("email", ids.emails), ("phone", ids.phones)):
        for value in values:
            matches = sorted(ws.with_field(kind, value), key=lambda p: p.num)
            found.update((p.num, p) for p in matches)
            if not matches:
                invalid.append(value)
    nums = list(found)
    activity = uow.users.activity(workspace_id, nums)
    fields = request.fields
    cohorts = memberships(nums) if memberships and nums and (fields is None or "cohorts" in fields) else {}
    users = [export_user(p, activity[p.num], cohorts.get(p.num, []), fields) for p in found.values()]
    return ExportResult(users, invalid)


def write_changes(
    uow: IdentityUnitOfWork,
    ws: WorkSet,
    workspace_id: str,
    listeners: Sequence[IdentityListener],
    now: float,
) -> dict[int, int]:
    """Write the work set, tell the listeners, append the Currents events (the caller commits)."""
    changes = ws.changes()
    if leaving := [m.orphan.num for m in changes.merges if m.orphan.num > 0]:
        for listener in listeners:
            listener.users_leaving(uow, leaving, workspace_id=workspace_id)
    stored = uow.users.apply(workspace_id, changes, now=now)
    merges = [Merge(m.orphan.num, stored.get(m.target_num, m.target_num)) for m in changes.merges]
    if merges:
        for listener in listeners:
            listener.users_merged(uow, merges, workspace_id=workspace_id, now=now)
    uow.outbox.append(workspace_id, _envelopes(ws, changes, workspace_id, now), now=now)
    return stored


def _user(profile: Profile, device_id: str | None = None) -> dict[str, str]:
    return envelope.event_user(
        braze_id=profile.braze_id,
        external_id=profile.external_id,
        device_id=device_id,
        timezone=profile.get("time_zone"),
    )


def _device(target: Target) -> str | None:
    if target.device_id is not None:
        return target.device_id
    return target.value if target.kind == "device_id" and isinstance(target.value, str) else None


def _envelopes(ws: WorkSet, changes: ChangeSet, workspace_id: str, now: float) -> list[envelope.Envelope]:
    events = [
        envelope.user_orphan(
            workspace_id=workspace_id,
            user=_user(m.orphan, m.device_id),
            orphaned_by_id=ws.profiles[m.target_num].braze_id,
            time=now,
        )
        for m in changes.merges
    ]
    for num in changes.subscriptions:
        profile = ws.profiles[num]
        state = profile.get("email_subscribe")
        assert state is not None
        events.append(
            envelope.email_subscription_change(
                workspace_id=workspace_id,
                user=_user(profile),
                state=state,
                email=profile.get("email"),
                time=now,
            )
        )
    for num, e in changes.events:
        events.append(
            envelope.custom_event(
                workspace_id=workspace_id,
                user=_user(ws.profiles[num], _device(e.target)),
                name=e.name,
                time=e.time,
                custom_properties=e.properties,
                app_id=e.app_id,
                context=e.context,
            )
        )
    for num, p in changes.purchases:
        events.append(
            envelope.purchase(
                workspace_id=workspace_id,
                user=_user(ws.profiles[num], _device(p.target)),
                product_id=p.product_id,
                currency=p.currency,
                price=p.price,
                time=p.time,
                purchase_properties=p.properties,
                app_id=p.app_id,
                context=p.context,
            )
        )
    return events
