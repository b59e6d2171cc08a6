"""The delivery loop counts the rounds in a row with nothing to send (each waits longer: the
integration tests check the waits) and starts counting again after a round that sends."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from cohorthub.currents.ports import CurrentsUnitOfWork, Sender
from cohorthub.currents.worker import DeliveryWorker, RoundReport


def _no_database() -> AbstractContextManager[CurrentsUnitOfWork]:
    raise AssertionError("this test's rounds are scripted")


def _no_sender() -> Sender:
    raise AssertionError("this test's rounds are scripted")


@dataclass
class ScriptedWorker(DeliveryWorker):
    """Rounds that send only where `sends` says; the loop ends after `rounds` rounds."""

    sends: frozenset[int] = frozenset()
    rounds: int = 0
    seen: list[int] = field(default_factory=list)

    def step(self, connector_id: str, *, wait: bool = True, quiet_rounds: int = 0) -> RoundReport:
        self.seen.append(quiet_rounds)
        n = len(self.seen)
        return RoundReport(alive=n < self.rounds, sent_batches=int(n in self.sends), wake_at=self.now())


def test_the_loop_counts_quiet_rounds_and_starts_again_after_a_send() -> None:
    worker = ScriptedWorker(uow=_no_database, sender_factory=_no_sender, sends=frozenset({4}), rounds=8)
    worker._loop("c1", threading.Event())
    assert worker.seen == [0, 1, 2, 3, 0, 1, 2, 3]
