"""The users one request touches, held in memory while the identity rules run (pure).

A use case loads every user its request names in one query, runs the rules here (resolve,
create, sign in, identify, merge, update), then hands the resulting `ChangeSet` to the
repository, which writes it with a few set-based statements. New users get negative
numbers until they are stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cohorthub.identity.attributes import AttributeUpdate, apply_custom
from cohorthub.identity.model import Profile, UserAlias, merge_blocked, merge_into, new_braze_id
from cohorthub.identity.requests import EventItem, PurchaseItem, Target


@dataclass(slots=True)
class Lookup:
    """Every identifier a request names, by kind."""

    external_ids: set[str] = field(default_factory=set)
    braze_ids: set[str] = field(default_factory=set)
    aliases: set[UserAlias] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    device_ids: set[str] = field(default_factory=set)

    def add(self, target: Target) -> None:
        """Include the identifiers of one target."""
        value = target.value
        if isinstance(value, UserAlias):
            self.aliases.add(value)
        else:
            getattr(self, _LOOKUP_SETS[target.kind]).add(value)
        if target.device_id is not None:
            self.device_ids.add(target.device_id)

    @classmethod
    def of(cls, targets: Iterable[Target]) -> Lookup:
        """The lookup for a batch of targets."""
        lookup = cls()
        for target in targets:
            lookup.add(target)
        return lookup


_LOOKUP_SETS = {
    "external_id": "external_ids",
    "braze_id": "braze_ids",
    "email": "emails",
    "phone": "phones",
    "device_id": "device_ids",
}


@dataclass(slots=True)
class Loaded:
    """What storage returns for a lookup: the users (with all their aliases) and device owners."""

    profiles: list[Profile]
    devices: dict[str, int]


@dataclass(frozen=True, slots=True)
class Orphaning:
    """`orphan` was merged into the user numbered `target_num`; `device_id` one of its devices."""

    orphan: Profile
    target_num: int
    device_id: str | None = None


@dataclass(slots=True)
class ChangeSet:
    """Everything to write, with users named by number (negative = created in this change)."""

    created: list[Profile]
    updated: list[Profile]
    merges: list[Orphaning]
    new_aliases: list[tuple[UserAlias, int]]
    dropped_aliases: list[UserAlias]
    devices: dict[str, int]
    events: list[tuple[int, EventItem]]
    purchases: list[tuple[int, PurchaseItem]]
    subscriptions: list[int] = field(default_factory=list)  # users whose email_subscribe changed


class WorkSet:
    """The loaded users and the rules that change them, in memory."""

    def __init__(self, loaded: Loaded, *, now: float) -> None:
        self.now = now
        self.profiles = {p.num: p for p in loaded.profiles}
        self.devices = dict(loaded.devices)
        self._external = {p.external_id: p.num for p in loaded.profiles if p.external_id is not None}
        self._braze = {p.braze_id: p.num for p in loaded.profiles}
        self._aliases = {a: p.num for p in loaded.profiles for a in p.aliases}
        self._merged_into: dict[int, int] = {}
        self._touched: set[int] = set()
        self._created: list[int] = []
        self._new_aliases: dict[UserAlias, int] = {}
        self._dropped_aliases: set[UserAlias] = set()
        self._assigned: set[str] = set()
        self._merges: list[Orphaning] = []
        self._events: list[tuple[int, EventItem]] = []
        self._purchases: list[tuple[int, PurchaseItem]] = []
        self._subscribed = {p.num: p.get("email_subscribe") for p in loaded.profiles}

    # -- finding -----------------------------------------------------------------------------
    def find(self, kind: str, value: str | UserAlias) -> Profile | None:
        """The user an identifier names now (email and phone: identified first, then newest)."""
        num: int | None
        if isinstance(value, UserAlias):
            num = self._aliases.get(value)
        elif kind in ("email", "phone"):
            matches = self.with_field(kind, value)
            return max(matches, key=lambda p: (not p.anonymous, p.updated_at, p.num)) if matches else None
        else:
            index = {"external_id": self._external, "braze_id": self._braze, "device_id": self.devices}[kind]
            num = index.get(value)
        return self.profiles.get(self.final(num)) if num is not None else None

    def with_field(self, name: str, value: str) -> list[Profile]:
        """Every loaded user whose standard field `name` holds `value`."""
        return [p for p in self.profiles.values() if p.get(name) == value]

    def final(self, num: int) -> int:
        """The user `num` became after any merges."""
        while num in self._merged_into:
            num = self._merged_into[num]
        return num

    # -- changing ----------------------------------------------------------------------------
    def touch(self, profile: Profile) -> None:
        """Mark a user changed (its `updated_at` moves to now)."""
        profile.updated_at = self.now
        self._touched.add(profile.num)

    def create(self) -> Profile:
        """A new anonymous user."""
        num = -1 - len(self._created)
        profile = Profile(
            num=num,
            braze_id=new_braze_id(self.now),
            external_id=None,
            created_at=self.now,
            updated_at=self.now,
        )
        self.profiles[num] = profile
        self._braze[profile.braze_id] = num
        self._created.append(num)
        return profile

    def set_external_id(self, profile: Profile, external_id: str) -> None:
        """Identify an anonymous user."""
        assert profile.anonymous
        assert external_id not in self._external
        profile.external_id = external_id
        self._external[external_id] = profile.num
        self.touch(profile)

    def add_alias(self, profile: Profile, alias: UserAlias) -> None:
        """Give `profile` an alias no one holds."""
        profile.aliases.add(alias)
        self._aliases[alias] = profile.num
        self._new_aliases[alias] = profile.num
        self._dropped_aliases.discard(alias)
        self.touch(profile)

    def drop_alias(self, profile: Profile, alias: UserAlias) -> None:
        """Remove one of `profile`'s aliases."""
        profile.aliases.discard(alias)
        self._aliases.pop(alias, None)
        if self._new_aliases.pop(alias, None) is None:
            self._dropped_aliases.add(alias)
        self.touch(profile)

    def assign_device(self, profile: Profile, device_id: str) -> None:
        """Make `device_id` belong to `profile`."""
        if self.devices.get(device_id) != profile.num:
            self.devices[device_id] = profile.num
            self._assigned.add(device_id)
        self.touch(profile)

    def update(self, profile: Profile, update: AttributeUpdate) -> None:
        """Apply an attributes object; ValueError (nothing changed) when an operation does not fit."""
        custom = apply_custom(profile.custom, update.custom)
        profile.custom = custom
        profile.fields.update(update.standard)
        self.touch(profile)

    def record_event(self, profile: Profile, item: EventItem) -> None:
        """Keep a custom event for `profile`."""
        self._events.append((profile.num, item))
        self.touch(profile)

    def record_purchase(self, profile: Profile, item: PurchaseItem) -> None:
        """Keep a purchase for `profile`."""
        self._purchases.append((profile.num, item))
        self.touch(profile)

    # -- identity rules ------------------------------------------------------------------------
    def resolve(self, target: Target) -> Profile | None:
        """The user a track object is about, created when allowed and missing."""
        if target.device_id is not None:
            assert isinstance(target.value, str)
            return self.sign_in(target.value, target.device_id, create=target.create)
        profile = self.find(target.kind, target.value)
        if profile is not None or not target.create or target.kind == "braze_id":
            return profile
        profile = self.create()
        value = target.value
        if isinstance(value, UserAlias):
            self.add_alias(profile, value)
        elif target.kind == "external_id":
            self.set_external_id(profile, value)
        elif target.kind == "device_id":
            self.assign_device(profile, value)
        else:
            profile.fields[target.kind] = value
        return profile

    def sign_in(self, external_id: str, device_id: str, *, create: bool) -> Profile | None:
        """`external_id` signs in on `device_id`: the device's anonymous profile is identified or merged."""
        owner = self.find("device_id", device_id)
        user = self.find("external_id", external_id)
        if user is None:
            if owner is not None and owner.anonymous:
                self.set_external_id(owner, external_id)
                return owner
            if not create:
                return None
            user = self.create()
            self.set_external_id(user, external_id)
        elif owner is not None and owner.anonymous and owner.num != user.num:
            self.merge(owner, user, device_id=device_id)
        self.assign_device(user, device_id)
        return user

    def identify(self, profile: Profile, external_id: str) -> bool:
        """Identify an anonymous `profile` as `external_id` (promote it, or merge it into that user)."""
        if not profile.anonymous:
            return profile.external_id == external_id
        user = self.find("external_id", external_id)
        if user is None:
            self.set_external_id(profile, external_id)
            return True
        return self.merge(profile, user)

    def merge(self, orphan: Profile, target: Profile, *, device_id: str | None = None) -> bool:
        """Merge anonymous `orphan` into `target` and remove it; False in the documented no-merge case.

        `device_id` is the orphan's device that caused the merge (else the first it owns).
        """
        assert orphan.anonymous
        assert orphan.num != target.num
        if merge_blocked(orphan, target):
            return False
        moved = set(orphan.aliases)
        merge_into(orphan, target)
        for alias in moved:
            self._aliases[alias] = target.num
        owned = sorted(d for d, num in self.devices.items() if num == orphan.num)
        for device in owned:
            self.devices[device] = target.num
        self._merged_into[orphan.num] = target.num
        del self.profiles[orphan.num]
        self._braze.pop(orphan.braze_id, None)
        if orphan.num > 0:
            self._merges.append(Orphaning(orphan, target.num, device_id or next(iter(owned), None)))
        self.touch(target)
        return True

    def changes(self) -> ChangeSet:
        """What to write."""
        final = self.final
        return ChangeSet(
            created=[self.profiles[n] for n in self._created if n in self.profiles],
            updated=[self.profiles[n] for n in sorted(self._touched) if n > 0 and n in self.profiles],
            merges=[Orphaning(m.orphan, final(m.target_num), m.device_id) for m in self._merges],
            new_aliases=[(a, final(n)) for a, n in sorted(self._new_aliases.items())],
            dropped_aliases=sorted(self._dropped_aliases),
            devices={d: final(self.devices[d]) for d in sorted(self._assigned)},
            events=[(final(n), item) for n, item in self._events],
            purchases=[(final(n), item) for n, item in self._purchases],
            subscriptions=[
                n
                for n, p in sorted(self.profiles.items())
                if p.get("email_subscribe") is not None
                and p.get("email_subscribe") != self._subscribed.get(n)
            ],
        )
