"""Group commit on SQLite: queued write requests share one transaction and one COMMIT.

A request held inside its unit of work lets the others queue behind it; when it commits it hands
the writer on, and the last of the run commits for all. A request that fails undoes only its own
savepoint; a request whose commit did not happen never returns from `commit()` successfully.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pyroaring import BitMap
from sqlalchemy import select

from cohorthub.bootstrap import Container
from cohorthub.cohorts.membership import Membership
from cohorthub.identity.errors import InvalidUserRequest
from cohorthub.identity.requests import parse_track
from cohorthub.identity.services import apply_track
from cohorthub.store.group_commit import sqlite_writer
from cohorthub.store.tables import users
from cohorthub.workspaces import services as workspaces

NOW = 1_800_000_000.0


@pytest.fixture
def ws(container: Container, database_url: str) -> str:
    if not database_url.startswith("sqlite"):
        pytest.skip("group commit is the SQLite writer's (PostgreSQL commits each request itself)")
    with container.uow() as uow:
        workspace, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    return workspace.id


class Requests:
    """Write requests in threads: the first is held inside its unit until the others queue."""

    def __init__(self, c: Container, ws: str) -> None:
        self.c, self.ws = c, ws
        self.outcomes: dict[str, Any] = {}
        self.held, self.go = threading.Event(), threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, external_id: str, *, hold: bool = False, fail: Any = None) -> None:
        """One request writing the user `external_id`; `fail(uow)` runs before it raises."""

        def run() -> None:
            try:
                with self.c.uow(group=True) as uow:
                    batch = parse_track({"attributes": [{"external_id": external_id, "n": 1}]}, now=NOW)
                    apply_track(uow=uow, workspace_id=self.ws, batch=batch, now=NOW)
                    if hold:
                        self.held.set()
                        assert self.go.wait(10)
                    if fail is not None:
                        fail(uow)
                        raise InvalidUserRequest(f"{external_id} refused")
                    uow.commit()
                self.outcomes[external_id] = "committed"
            except Exception as exc:  # the outcome is what the test checks
                self.outcomes[external_id] = exc

        thread = threading.Thread(target=run)
        self.threads.append(thread)
        thread.start()
        if hold:
            assert self.held.wait(10)

    def group(self, failing: str, fail: Any) -> None:
        """a (held), b, `failing` and d: the last three queue behind a, then all run."""
        self.start("a", hold=True)
        self.start("b")
        self.start(failing, fail=fail)
        self.start("d")
        self.release_when_queued(3)

    def release_when_queued(self, count: int) -> None:
        """Let the held request go once `count` others wait for the writer; wait for all."""
        writer = sqlite_writer(self.c.engine)
        for _ in range(1000):
            if writer.waiting >= count:
                break
            threading.Event().wait(0.01)
        assert writer.waiting == count
        self.go.set()
        for thread in self.threads:
            thread.join(10)

    def stored(self) -> set[str]:
        with self.c.uow(readonly=True) as uow:
            return {str(x) for x in uow.conn.execute(select(users.c.external_id)).scalars()}


@contextmanager
def counted(c: Container) -> Iterator[list[int]]:
    """[COMMITs, acknowledged requests] made inside the block."""
    writer = sqlite_writer(c.engine)
    before = (writer.commits, writer.acknowledged)
    result = [0, 0]
    yield result
    result[:] = [writer.commits - before[0], writer.acknowledged - before[1]]


def test_queued_requests_commit_once_and_a_failing_one_undoes_only_its_own_work(
    container: Container, ws: str
) -> None:
    requests = Requests(container, ws)
    with counted(container) as made:
        requests.group("c", fail=lambda uow: None)
    assert made == [1, 3]  # one COMMIT (one fsync) acknowledged a, b and d
    assert {k: v for k, v in requests.outcomes.items() if k != "c"} == dict.fromkeys("abd", "committed")
    failure = requests.outcomes["c"]
    assert isinstance(failure, InvalidUserRequest) and failure.message == "c refused"
    assert requests.stored() == {"a", "b", "d"}


def test_no_request_of_a_group_whose_transaction_is_lost_is_acknowledged(
    container: Container, ws: str
) -> None:
    container.membership.put(1, Membership(1, 0, BitMap([7])))  # caught up inside the lost transaction
    requests = Requests(container, ws)
    requests.group("lost", fail=lambda uow: uow.conn.exec_driver_sql("ROLLBACK"))  # the transaction is gone
    committed = {k for k, v in requests.outcomes.items() if v == "committed"}
    assert "a" not in committed  # it was in the lost transaction: its commit() raised
    assert len(container.membership) == 0  # nothing read inside that transaction is kept
    assert requests.stored() == committed  # every acknowledged change is there, and only those
    after = Requests(container, ws)  # and the writer goes on
    after.start("e")
    after.threads[0].join(10)
    assert after.outcomes == {"e": "committed"} and "e" in requests.stored()


def test_a_plain_writer_commits_the_open_group_before_its_own_transaction(
    container: Container, ws: str
) -> None:
    requests = Requests(container, ws)
    requests.start("a", hold=True)
    requests.start("b")
    plain = threading.Thread(target=lambda: _create_workspace(container))
    plain.start()
    requests.release_when_queued(2)
    plain.join(10)
    assert requests.outcomes == {"a": "committed", "b": "committed"}
    assert requests.stored() == {"a", "b"}


def _create_workspace(c: Container) -> None:
    with c.uow() as uow:
        workspaces.create_workspace(uow=uow, name="Other", now=NOW)


def test_a_grouped_unit_cannot_write_after_its_commit(container: Container, ws: str) -> None:
    with container.uow(group=True) as uow:
        batch = parse_track({"attributes": [{"external_id": "once", "n": 1}]}, now=NOW)
        apply_track(uow=uow, workspace_id=ws, batch=batch, now=NOW)
        uow.commit()
        with pytest.raises(RuntimeError):  # the writer went on to others: a second turn would be theirs
            uow.commit()
        with pytest.raises(RuntimeError):
            uow.rollback()
    assert Requests(container, ws).stored() == {"once"}


def test_a_grouped_unit_rolled_back_part_way_keeps_only_what_came_after(
    container: Container, ws: str
) -> None:
    requests = Requests(container, ws)
    requests.start("a", hold=True)  # an earlier member of the same group: its work must stay
    requests.held.wait(10)
    requests.go.set()
    requests.threads[0].join(10)

    with container.uow(group=True) as uow:
        for external_id in ("undone", "kept"):
            batch = parse_track({"attributes": [{"external_id": external_id, "n": 1}]}, now=NOW)
            apply_track(uow=uow, workspace_id=ws, batch=batch, now=NOW)
            if external_id == "undone":
                uow.rollback()  # back to this unit's own savepoint, then on in a fresh one
        uow.commit()
    assert requests.outcomes == {"a": "committed"}
    assert requests.stored() == {"a", "kept"}
