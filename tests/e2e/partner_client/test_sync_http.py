"""The library against a real HTTP server on loopback: outcomes, retries and refusals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohorthub.partner_client import (
    AuthenticationError,
    Cohort,
    CohortSyncClient,
    IterableSource,
    RequestRejected,
    RetriesExhausted,
    RetryPolicy,
    StateStore,
)
from tests.conftest import EndlessAnswer

from .partner_server import LIMIT_MESSAGE, PartnerServer


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(partner_server: PartnerServer, tmp_path: Path, sleeps: Sleeps) -> Iterator[CohortSyncClient]:
    with CohortSyncClient(
        partner_server.url,
        partner=partner_server.partner,
        partner_api_key=partner_server.partner_key,
        data_import_key="DIK",
        state=tmp_path / "state.sqlite",
        sleep=sleeps,
        jitter=lambda: 0.0,
        policy=RetryPolicy(max_attempts_transient=3, base_delay=0.5),
    ) as sync_client:
        yield sync_client


MIXED = [("external_id", f"u{i}") for i in range(1200)] + [("device_id", f"d{i}") for i in range(300)]
MIXED += [("alias:email", f"a{i}@x.com") for i in range(200)]


def test_create_change_rename_against_the_server(
    client: CohortSyncClient, partner_server: PartnerServer
) -> None:
    first = client.sync(Cohort("trial", "Trial abandoners"), IterableSource(MIXED))
    assert partner_server.name("trial") == "Trial abandoners"
    assert partner_server.members("trial") == set(MIXED)
    assert (first.adds, first.requests) == (1700, 3)
    assert all(
        sum(len(c[k]) for k in ("user_ids", "device_ids", "aliases")) <= 1000
        for r in partner_server.users_requests()
        for c in r.body["cohort_changes"]
    )

    changed = [*MIXED[100:], ("device_id", "new-device"), ("alias:phone", "555")]
    second = client.sync(Cohort("trial", "Trial abandoners"), IterableSource(changed))
    assert (second.adds, second.removes, second.name_sent, second.requests) == (2, 100, False, 2)
    assert partner_server.members("trial") == set(changed)

    renamed = client.sync(Cohort("trial", "Trial abandoners v2"), IterableSource(changed))
    assert (renamed.adds, renamed.removes, renamed.requests) == (0, 0, 1)
    assert partner_server.name("trial") == "Trial abandoners v2"
    assert partner_server.members("trial") == set(changed)
    assert partner_server.requests[-1].path == "/partners/heap/cohorts"


def test_throttling_and_locks_wait_as_told(
    client: CohortSyncClient, partner_server: PartnerServer, sleeps: Sleeps
) -> None:
    partner_server.fail_next(429, retry_after="2")
    partner_server.fail_next(423, message="Resource locked")
    client.sync(Cohort("c", "C"), IterableSource(["u1"]))
    assert sleeps == [2.0, 1.0]  # Retry-After, then backoff (0.5 * 2) for the second attempt
    assert [r.status for r in partner_server.requests] == [429, 423, 201, 201]
    assert partner_server.members("c") == {("external_id", "u1")}


def test_server_errors_and_dropped_connections_are_retried(
    client: CohortSyncClient, partner_server: PartnerServer, sleeps: Sleeps
) -> None:
    client.sync(Cohort("c", "C"), IterableSource([]))
    partner_server.fail_next(500)
    partner_server.drop_next()
    client.sync(Cohort("c", "C"), IterableSource([f"u{i}" for i in range(1500)]))
    assert sleeps == [0.5, 1.0]
    assert [r.status for r in partner_server.requests[1:]] == [500, 0, 201, 201]
    assert len(partner_server.members("c")) == 1500


def test_retries_give_up_and_keep_what_was_acknowledged(
    client: CohortSyncClient, partner_server: PartnerServer
) -> None:
    client.sync(Cohort("c", "C"), IterableSource([]))
    ids = [f"u{i}" for i in range(2500)]
    partner_server.fail_next(503, times=3, after=1)  # the second chunk fails on every attempt
    with pytest.raises(RetriesExhausted) as caught:
        client.sync(Cohort("c", "C"), IterableSource(ids))
    assert (caught.value.status, caught.value.attempts) == (503, 3)
    key = client.state.ensure(client.target, "c").key
    assert len(client.state.previous(key).all_members()) == 1000
    resumed = client.sync(Cohort("c", "C"), IterableSource(ids))
    assert resumed.adds == 1500
    assert partner_server.members("c") == {("external_id", i) for i in ids}


@pytest.mark.parametrize(
    ("keys", "message", "hint"),
    [
        (("nope", "DIK"), "Invalid Partner API key", "--partner-key"),
        (("PK", "wrong"), "Invalid client secret", "--data-import-key"),
        (("PK", "OTHER"), "Partner not enabled for client with client secret: OTHER", "not enabled"),
    ],
)
def test_401_stops_with_the_message_and_a_hint(
    partner_server: PartnerServer, tmp_path: Path, keys: tuple[str, str], message: str, hint: str
) -> None:
    partner_server.secrets["OTHER"] = set()
    with (
        CohortSyncClient(
            partner_server.url,
            partner="heap",
            partner_api_key=keys[0],
            data_import_key=keys[1],
            state=StateStore(":memory:"),
        ) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.sync(Cohort("c", "C"), IterableSource(["u1"]))
    assert caught.value.message == message
    assert hint in caught.value.hint
    assert len(partner_server.requests) == 1


def test_400_stops_and_shows_the_offending_part(
    client: CohortSyncClient, partner_server: PartnerServer
) -> None:
    client.sync(Cohort("c", "C"), IterableSource([]))
    partner_server.fail_next(400, message=LIMIT_MESSAGE)
    with pytest.raises(RequestRejected) as caught:
        client.sync(Cohort("c", "C"), IterableSource(["u1", "u2"]))
    assert caught.value.message == LIMIT_MESSAGE
    assert "cohort_changes: 1 objects, 2 identifiers" in caught.value.request_part
    partner_server.fail_next(400, message="`name` must be a non-empty string")
    with pytest.raises(RequestRejected, match=r"request part: name='Renamed'"):
        client.sync(Cohort("c", "Renamed"), IterableSource(["u1", "u2"]))


def _endless_client(
    server: EndlessAnswer, tmp_path: Path, sleeps: Sleeps, timeout: float
) -> CohortSyncClient:
    return CohortSyncClient(
        server.url.removesuffix("/endless"),
        partner="heap",
        partner_api_key="PK",
        data_import_key="DIK",
        state=tmp_path / "state.sqlite",
        sleep=sleeps,
        jitter=lambda: 0.0,
        policy=RetryPolicy(max_attempts_transient=2, base_delay=0.5),
        timeout=timeout,
    )


def test_an_endless_error_answer_is_read_only_so_far(tmp_path: Path, sleeps: Sleeps) -> None:
    server = EndlessAnswer(500, total=512 << 20)  # 512 MiB an attempt, were it all read
    try:
        with (
            _endless_client(server, tmp_path, sleeps, timeout=10.0) as client,
            pytest.raises(RetriesExhausted) as caught,
        ):
            client.sync(Cohort("c", "C"), IterableSource(["u1"]))
        assert (caught.value.status, caught.value.attempts, server.requests) == (500, 2, 2)
        assert str(caught.value).count("x") >= 100  # the start of the body is the error's text
        assert server.sent < 2 * (64 << 20)  # each attempt stopped reading near the first 64 KiB
    finally:
        server.close()


def test_a_dripping_answer_holds_the_client_for_its_timeout_only(tmp_path: Path, sleeps: Sleeps) -> None:
    server = EndlessAnswer(400, total=400, piece=1, pause=0.05)  # 20 s, were it all read
    try:
        started = time.monotonic()
        with _endless_client(server, tmp_path, sleeps, timeout=1.0) as client, pytest.raises(RequestRejected):
            client.sync(Cohort("c", "C"), IterableSource(["u1"]))
        assert time.monotonic() - started < 10
        assert server.requests == 1 and server.sent < 400
    finally:
        server.close()
