"""What an import does to the process while it runs: full garbage collections paused, the reader yielding."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from cohorthub.identity import imports
from cohorthub.identity.bulk import Parsed, Rejection
from cohorthub.identity.imports import ImportSummary, import_users


def never_opened() -> Any:
    raise AssertionError("no usable row: no transaction")


def run(rows: Iterator[Parsed], **options: Any) -> ImportSummary:
    """Import rows that are all rejected (so no transaction opens), with the given options."""
    return import_users(new_uow=never_opened, workspace_id="w", rows=rows, clock=lambda: 0.0, **options)


def rejected(count: int) -> Iterator[Parsed]:
    for line in range(2, count + 2):
        yield Rejection(line, "external_id must not be empty")


def test_full_collections_pause_while_an_import_runs_and_come_back() -> None:
    before = gc.get_threshold()
    during: list[tuple[int, ...]] = []

    def progress(_: ImportSummary) -> None:
        during.append(gc.get_threshold())

    summary = run(rejected(3), chunk_rows=1, progress=progress)
    assert summary.rejected == 3
    assert len(during) == 3
    assert all(t[:2] == before[:2] and t[2] >= 1 << 30 for t in during)
    assert gc.get_threshold() == before


def test_an_import_inside_another_keeps_them_paused_until_the_last_ends() -> None:
    before = gc.get_threshold()
    inner: list[tuple[int, ...]] = []

    def nested(_: ImportSummary) -> None:
        run(rejected(1))
        inner.append(gc.get_threshold())

    run(rejected(1), progress=nested)
    assert inner and inner[0][2] >= 1 << 30  # the inner import ended, the outer one still ran
    assert gc.get_threshold() == before


def test_a_failed_import_restores_the_collector() -> None:
    before = gc.get_threshold()

    def failing() -> Iterator[Parsed]:
        yield from rejected(2)
        raise RuntimeError("the file went away")

    with pytest.raises(RuntimeError):
        run(failing(), chunk_rows=1)
    assert gc.get_threshold() == before


def test_the_reader_lets_go_of_the_interpreter_every_few_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(imports, "time", SimpleNamespace(sleep=pauses.append))
    rows = 3 * imports.YIELD_EVERY + 1
    summary = run(rejected(rows), chunk_rows=100)
    assert summary.rejected == rows
    assert pauses == [0, 0, 0]  # a waiting writer gets it within YIELD_EVERY rows of parsing


@pytest.mark.parametrize(("stop_after", "stopped", "rows"), [(2, True, 2), (3, False, 3), (None, False, 3)])
def test_an_import_asked_to_stop_ends_after_the_chunk_it_is_in(
    stop_after: int | None, stopped: bool, rows: int
) -> None:
    # Three rows, a chunk each; `stop` says yes once `stop_after` chunks are committed. After the
    # last chunk there is nothing left to stop: the import is whole, not stopped.
    chunks: list[int] = []
    summary = run(
        rejected(3),
        chunk_rows=1,
        progress=lambda s: chunks.append(s.rows),
        stop=lambda: stop_after is not None and len(chunks) >= stop_after,
    )
    assert (summary.stopped, summary.rows, summary.committed) == (stopped, rows, rows)
    assert chunks == list(range(1, rows + 1))
