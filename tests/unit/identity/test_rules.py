"""Identify and merge decisions, run on in-memory users."""

from __future__ import annotations

import pytest

from cohorthub.identity.errors import InvalidUserRequest
from cohorthub.identity.lookups import parse_delete, parse_export, parse_identify, parse_new_aliases
from cohorthub.identity.model import Profile, UserAlias, new_braze_id, new_braze_ids, pick
from cohorthub.identity.requests import Target
from cohorthub.identity.workset import Loaded, WorkSet

NOW = 1_800_000_000.0


def user(num: int, external_id: str | None = None, *, updated: float = 1.0, **fields: str) -> Profile:
    return Profile(num, f"{num:024x}", external_id, 1.0, updated, fields=dict(fields))


def test_braze_ids_are_24_hex_and_unique() -> None:
    ids = {new_braze_id(NOW) for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ids)


def test_braze_ids_drawn_at_once_are_shaped_the_same() -> None:
    ids = new_braze_ids(NOW, 1_000)
    assert len(set(ids)) == 1_000
    assert {i[:8] for i in ids} == {new_braze_id(NOW)[:8]}
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ids)


def test_new_external_id_promotes_the_anonymous_device_profile() -> None:
    anon = user(1, first_name="Anon")
    ws = WorkSet(Loaded([anon], {"d1": 1}), now=NOW)
    signed = ws.sign_in("u1", "d1", create=True)
    assert signed is anon
    assert anon.external_id == "u1"
    assert anon.updated_at == NOW
    assert ws.changes().merges == []


def test_existing_external_id_merges_the_anonymous_profile_into_it() -> None:
    anon = user(1, first_name="Anon", email="a@x.io")
    anon.custom = {"plan": "free", "seen": 1}
    anon.aliases = {UserAlias("heap", "h1")}
    known = user(2, "u1", first_name="Known")
    known.custom = {"plan": "pro"}
    ws = WorkSet(Loaded([anon, known], {"d1": 1}), now=NOW)
    assert ws.sign_in("u1", "d1", create=True) is known
    assert known.fields == {"first_name": "Known", "email": "a@x.io"}
    assert known.custom == {"plan": "pro", "seen": 1}
    assert known.aliases == {UserAlias("heap", "h1")}
    changes = ws.changes()
    assert [(m.orphan.num, m.target_num) for m in changes.merges] == [(1, 2)]
    assert changes.devices == {}  # the merge moves the orphan's devices
    assert ws.find("user_alias", UserAlias("heap", "h1")) is known
    assert ws.find("device_id", "d1") is known


def test_no_merge_when_the_identified_user_has_an_alias_with_the_same_label() -> None:
    anon = user(1)
    anon.aliases = {UserAlias("heap", "h1")}
    known = user(2, "u1")
    known.aliases = {UserAlias("heap", "h2")}
    ws = WorkSet(Loaded([anon, known], {}), now=NOW)
    assert ws.identify(anon, "u1") is False
    assert ws.changes().merges == []
    assert anon.anonymous


def test_a_signed_in_device_moves_to_the_identified_user_even_without_merge() -> None:
    anon = user(1)
    anon.aliases = {UserAlias("heap", "h1")}
    known = user(2, "u1")
    known.aliases = {UserAlias("heap", "h2")}
    ws = WorkSet(Loaded([anon, known], {"d1": 1}), now=NOW)
    ws.sign_in("u1", "d1", create=True)
    assert ws.changes().devices == {"d1": 2}
    assert ws.changes().merges == []


def test_a_profile_created_and_merged_in_one_request_is_never_stored() -> None:
    known = user(2, "u1")
    ws = WorkSet(Loaded([known], {}), now=NOW)
    anon = ws.resolve(Target("device_id", "d9", create=True))
    assert anon is not None
    assert anon.num < 0
    ws.sign_in("u1", "d9", create=True)
    changes = ws.changes()
    assert changes.created == []
    assert changes.merges == []
    assert changes.devices == {"d9": 2}


def test_update_only_targets_do_not_create() -> None:
    ws = WorkSet(Loaded([], {}), now=NOW)
    assert ws.resolve(Target("user_alias", UserAlias("l", "n"), create=False)) is None
    assert ws.resolve(Target("braze_id", "abc", create=True)) is None
    assert ws.changes().created == []


def test_email_lookup_prefers_identified_then_most_recent() -> None:
    a = user(1, updated=5.0, email="a@x.io")
    b = user(2, "u2", updated=1.0, email="a@x.io")
    c = user(3, updated=9.0, email="a@x.io")
    ws = WorkSet(Loaded([a, b, c], {}), now=NOW)
    assert ws.find("email", "a@x.io") is b


@pytest.mark.parametrize(
    ("prioritization", "expected"),
    [
        (("unidentified", "most_recently_updated"), 3),
        (("unidentified", "least_recently_updated"), 1),
        (("identified",), 2),
        (("unidentified",), None),  # two remain: ambiguous, no merge
        (("most_recently_updated",), 2),
    ],
)
def test_prioritization(prioritization: tuple[str, ...], expected: int | None) -> None:
    users = [user(1, updated=5.0), user(2, "u2", updated=9.0), user(3, updated=7.0)]
    chosen = pick(users, prioritization)
    assert (chosen.num if chosen else None) == expected


def test_prioritization_tie_is_ambiguous() -> None:
    assert pick([user(1, updated=5.0), user(2, updated=5.0)], ("most_recently_updated",)) is None


def test_identify_and_alias_requests_are_all_or_nothing() -> None:
    items = parse_identify(
        {
            "aliases_to_identify": [
                {"external_id": "u", "user_alias": {"alias_name": "n", "alias_label": "l"}}
            ],
            "emails_to_identify": [
                {"external_id": "u", "email": "A@x.io", "prioritization": ["unidentified"]}
            ],
        }
    )
    assert [(i.kind, i.value) for i in items] == [("user_alias", UserAlias("l", "n")), ("email", "a@x.io")]
    with pytest.raises(InvalidUserRequest, match=r"aliases_to_identify\[1\]: external_id must be a string"):
        parse_identify(
            {
                "aliases_to_identify": [
                    {"external_id": "u", "user_alias": {"alias_name": "n", "alias_label": "l"}},
                    {"external_id": 5, "user_alias": {"alias_name": "n", "alias_label": "l"}},
                ]
            }
        )
    with pytest.raises(InvalidUserRequest, match="not both"):
        parse_identify(
            {
                "emails_to_identify": [
                    {"external_id": "u", "email": "a@x.io", "prioritization": ["identified", "unidentified"]}
                ]
            }
        )
    with pytest.raises(InvalidUserRequest, match="Too many user_aliases: 51 given, at most 50"):
        parse_new_aliases({"user_aliases": [{"alias_name": "n", "alias_label": "l"}] * 51})


def test_delete_and_export_limits() -> None:
    with pytest.raises(InvalidUserRequest, match="Too many identifiers: 51 given"):
        parse_delete({"external_ids": ["a"] * 30, "braze_ids": ["b"] * 21})
    with pytest.raises(InvalidUserRequest, match="One of external_ids, user_aliases, braze_ids, email_addr"):
        parse_delete({"emails": ["a@x.io"]})
    with pytest.raises(InvalidUserRequest, match="Unknown fields_to_export: nope"):
        parse_export({"external_ids": ["a"], "fields_to_export": ["email", "nope"]})
    request = parse_export({"email_address": "A@x.io", "fields_to_export": ["email", "apps", "cohorts"]})
    assert request.ids.emails == ["a@x.io"]
    assert request.fields == frozenset({"email", "apps", "cohorts"})
