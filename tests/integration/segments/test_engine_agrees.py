"""The bitmap engine over the real stores agrees with the reference evaluator, before and
after changes (attribute updates, new events, cohort imports, deletions) it must catch up on."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyroaring import BitMap

from cohorthub.bootstrap import Container
from cohorthub.cohorts.services import cohort_bitmap
from cohorthub.segments.model import DAY, parse_filter
from cohorthub.segments.reference import UserFacts, matches
from tests.integration.segments import factories as f
from tests.unit.segments.strategies import COHORTS, NOW, Person, people, trees


def _insert(c: Container, population: list[Person]) -> tuple[str, list[int], dict[str, int]]:
    with c.uow() as uow:
        ws = f.workspace(uow.conn, now=NOW)
        nums = []
        for p in population:
            num = f.user(
                uow.conn, ws, now=NOW, custom=p.custom, external_id=p.external_id,
                created_at=NOW - p.created_days_ago * DAY, **p.columns,
            )  # fmt: skip
            nums.append(num)
            for name, ago in p.events:
                f.event(uow.conn, ws, num, name, at=NOW - ago * DAY)
            for product, ago in p.purchases:
                f.purchase(uow.conn, ws, num, product, at=NOW - ago * DAY)
            for ago in p.sessions:
                f.session(uow.conn, ws, num, at=NOW - ago * DAY)
        pks = {cid: f.cohort(uow.conn, ws, cid, name=cid.upper(), now=NOW) for cid in COHORTS}
        for cid, pk in pks.items():
            inside = [n for n, p in zip(nums, population, strict=True) if cid in p.cohorts]
            f.cohort_write(uow.conn, pk, entered=inside, now=NOW)
        uow.commit()
    return ws, nums, pks


def engine_members(c: Container, ws: str, raw: dict[str, Any], *, now: float = NOW) -> set[int]:
    """The engine's answer through the store, with cohorts from the cohort membership cache."""
    with c.uow(readonly=True) as uow:

        def cohorts(partner: str, cohort_id: str, _state: object) -> BitMap:
            return cohort_bitmap(
                uow=uow, cache=c.membership, workspace_id=ws, partner=partner, cohort_id=cohort_id
            )

        node = parse_filter(raw)
        members, _ = c.segments.evaluate(
            uow.segments, cohorts=cohorts, workspace_id=ws, node=node, definitions={}, now=now
        )
        return set(members)


def _reference(raw: dict[str, Any], users: dict[int, UserFacts], *, now: float = NOW) -> set[int]:
    node = parse_filter(raw)
    return {n for n, u in users.items() if matches(node, u, now=now, definitions={})}


_LATER = st.sampled_from([0.0, 60.0, 0.3 * DAY, 1.2 * DAY, 3.1 * DAY, -DAY])  # -DAY: the clock went back


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=trees(), population=people(max_size=6), data=st.data())
def test_engine_and_reference_agree_and_stay_in_step(
    container: Container, raw: dict[str, Any], population: list[Person], data: st.DataObject
) -> None:
    ws, nums, pks = _insert(container, population)
    users = {n: p.facts(n) for n, p in zip(nums, population, strict=True)}
    assert engine_members(container, ws, raw) == _reference(raw, users)
    later = NOW + data.draw(_LATER)  # relative-time windows slide with the clock
    assert engine_members(container, ws, raw, now=later) == _reference(raw, users, now=later)
    if not nums:
        return
    # Change things behind the engine's back, as other requests or processes would.
    who = data.draw(st.sampled_from(list(zip(nums, population, strict=True))))
    gone = data.draw(st.sampled_from(nums))
    with container.uow() as uow:
        num, person = who
        person.columns["country"] = "ES"
        person.custom["plan"] = "pro"
        person.events.append(("play", 0.1))
        f.change_user(uow.conn, num, now=NOW + 1, custom=person.custom, country="ES")
        f.event(uow.conn, ws, num, "play", at=NOW - 0.1 * DAY)
        person.sessions.append(0.2)
        f.session(uow.conn, ws, num, at=NOW - 0.2 * DAY)
        f.cohort_write(uow.conn, pks["c2"], entered=[num], now=NOW + 1)
        person.cohorts.add("c2")
        for listener in container.identity_listeners:
            listener.users_deleted(uow, [gone], workspace_id=ws, now=NOW + 1)
        f.delete_user(uow.conn, gone)
        uow.commit()
    users[num] = person.facts(num)
    del users[gone]
    assert engine_members(container, ws, raw, now=later) == _reference(raw, users, now=later)
    last = later + data.draw(_LATER)  # changes caught up, then the window slides past them
    assert engine_members(container, ws, raw, now=last) == _reference(raw, users, now=last)
