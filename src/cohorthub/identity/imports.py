"""Bulk user import: a file's rows applied with the `/users/track` rules, committed chunk by chunk.

Each chunk (`chunk_rows` rows) is one transaction: its users are looked up in one query (and
locked, as track locks them), the identity rules run in memory (`WorkSet`), the changes are
written with multi-row statements, and the Currents events and identity listeners follow in the
same transaction, exactly as for a `/users/track` request. Most rows of a first import only create
a user: those (`split_new`) skip the work set and become stored rows directly (`new_users`), with
the same attribute rules and nothing else to write. A chunk's commit makes its rows durable; the
writer lock is released between chunks, so other writers are not held up for long. A crash leaves
the committed chunks; importing the same file again sets the same attributes (idempotent for
attributes) and counts its users as updated.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from cohorthub.identity.bulk import ImportRow, Parsed, Rejection
from cohorthub.identity.errors import InvalidImportFile
from cohorthub.identity.listeners import IdentityListener
from cohorthub.identity.model import new_braze_ids
from cohorthub.identity.ports import IdentityUnitOfWork, NewUser
from cohorthub.identity.services import missing_user, write_changes
from cohorthub.identity.workset import Lookup, WorkSet

#: Rows per transaction unless the caller says otherwise.
CHUNK_ROWS = 5_000
#: Rejections listed in a summary (the counts are always exact).
MAX_LISTED = 100


@dataclass(slots=True)
class ImportSummary:
    """What an import did so far: rows read, users created and updated, rows rejected, rows committed."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0
    committed: int = 0
    errors: list[Rejection] = field(default_factory=list)
    #: Whether the import stopped before the end of the file, when asked to (`import_users`'s `stop`).
    stopped: bool = False

    def reject(self, rejection: Rejection) -> None:
        """Count a rejected row; list it while fewer than `MAX_LISTED` are."""
        self.rejected += 1
        if len(self.errors) < MAX_LISTED:
            self.errors.append(rejection)

    def wire(self) -> dict[str, Any]:
        """The summary as the API and the CLI print it."""
        return {
            "message": "success",
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "rejected": self.rejected,
            "committed": self.committed,
            "errors": [e.wire() for e in self.errors],
        }


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """One chunk's outcome."""

    created: int
    updated: int
    rejections: list[Rejection]


def import_chunk(
    *,
    uow: IdentityUnitOfWork,
    workspace_id: str,
    rows: Sequence[ImportRow],
    listeners: Sequence[IdentityListener] = (),
    now: float,
) -> ChunkResult:
    """Apply rows with the track rules in one transaction and commit.

    The chunk's users are looked up (and locked) in one query. A row that creates a user no other
    row of the chunk names, with nothing but attributes to write, is a plain insert (`new_users`);
    every other row runs through the identity rules (`WorkSet`).
    """
    loaded = uow.users.load(workspace_id, lookup_of(rows), lock=True)
    fresh, rest = split_new(rows, {p.external_id for p in loaded.profiles})
    new = new_users(fresh, now)
    rejections: list[Rejection] = []
    ws = WorkSet(loaded, now=now)
    created = len(new)
    updated = 0
    born: set[int] = set()
    for row in rest:
        profile = ws.resolve(row.target)
        if profile is None:
            rejections.append(Rejection(row.line, missing_user(row.target)))
            continue
        try:
            ws.update(profile, row.update)
        except ValueError as exc:
            rejections.append(Rejection(row.line, str(exc)))
            continue
        if profile.num < 0 and profile.num not in born:
            born.add(profile.num)
            created += 1
        else:
            updated += 1
    write_changes(uow, ws, workspace_id, listeners, now)
    uow.users.insert_new(workspace_id, new, now=now)
    uow.commit()
    return ChunkResult(created, updated, rejections)


def lookup_of(rows: Sequence[ImportRow]) -> Lookup:
    """The identifiers the rows name (a file naming its users by external id alone, built at once)."""
    targets = [r.target for r in rows]
    if all(t.kind == "external_id" and t.device_id is None for t in targets):
        return Lookup(external_ids={t.value for t in targets if isinstance(t.value, str)})
    return Lookup.of(targets)


def split_new(
    rows: Sequence[ImportRow], existing: set[str | None]
) -> tuple[list[ImportRow], list[ImportRow]]:
    """The rows that only create a user (by a new external id no other row names), and the rest.

    Such a row's stored values were made as the file was read (`ImportRow.created`: an external
    id, values only, no `email_subscribe`, whose change is a Currents event). A chunk naming users
    by e-mail or phone keeps every row on the rules' path: such a row may name a user another row
    of the chunk creates.
    """
    if any(r.target.kind in ("email", "phone") for r in rows):
        return [], list(rows)
    named = Counter(r.target.value for r in rows if r.target.kind == "external_id")
    fresh: list[ImportRow] = []
    rest: list[ImportRow] = []
    for row in rows:
        value = row.target.value
        alone = row.created is not None and named[value] == 1 and value not in existing
        (fresh if alone else rest).append(row)
    return fresh, rest


def new_users(rows: Sequence[ImportRow], now: float) -> list[NewUser]:
    """The users `rows` create (`split_new`): a braze id each, then the values the reader made."""
    braze_ids = new_braze_ids(now, len(rows))
    return [
        (braze_id, row.target.value, *(row.created or ()))
        for braze_id, row in zip(braze_ids, rows, strict=True)
    ]


def _chunks(rows: Iterable[Parsed], size: int) -> Iterator[list[Parsed]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


#: Rows the reader parses between offers of the interpreter to the writer (~0.3 ms of parsing).
YIELD_EVERY = 64


def _yielding(rows: Iterable[Parsed]) -> Iterator[Parsed]:
    """`rows`, the interpreter let go every `YIELD_EVERY` rows so that a waiting writer gets it.

    Each time one of the writer's database calls returns it waits for the interpreter; a reader busy
    parsing keeps it for a whole switch interval (5 ms), a dozen times a chunk: the writer then stalls
    while the reader parses, and the two never overlap (64,000 users/s with a free core, 80,000 with this).
    """
    for count, row in enumerate(rows, 1):
        if not count % YIELD_EVERY:
            time.sleep(0)
        yield row


def _read_ahead(chunks: Iterator[list[Parsed]]) -> Iterator[list[Parsed]]:
    """The chunks, the next one read and parsed in a thread while this one is written.

    The store lets go of the interpreter while the database works, so parsing overlaps the writes.
    An error of the reader (a bad header) is raised here, in order; stopping early stops the reader.
    """
    ready: queue.Queue[tuple[list[Parsed] | None, BaseException | None]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def offer(item: tuple[list[Parsed] | None, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the caller stopped taking chunks

    def read() -> None:
        try:
            for chunk in chunks:
                if not offer((chunk, None)):
                    return
            offer((None, None))
        except BaseException as exc:  # handed to the caller, which raises it
            offer((None, exc))

    reader = threading.Thread(target=read, name="import-reader", daemon=True)
    reader.start()
    try:
        while True:
            chunk, error = ready.get()
            if error is not None:
                raise error
            if chunk is None:
                return
            yield chunk
    finally:
        stop.set()
        reader.join()


class _FullCollectionsPaused:
    """While any import runs, the cyclic garbage collector skips its full (oldest-generation) passes.

    An import keeps a chunk or two of parsed rows alive, ~5 tracked objects a row, so they keep
    reaching the oldest generation; a full pass then walks every object of the process (~100,000 at
    rest, ~85 ms each), about once a chunk: a fifth of the import's CPU. The young generations are
    still collected; the thresholds come back when the last import in the process ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved = gc.get_threshold()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if not self._running:
                self._saved = gc.get_threshold()
                gc.set_threshold(self._saved[0], self._saved[1], _NEVER)
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if not self._running:
                    gc.set_threshold(*self._saved)


#: A threshold of young collections between two full ones that an import never reaches.
_NEVER = 1 << 30
_full_collections_paused = _FullCollectionsPaused()


def import_users(
    *,
    new_uow: Callable[[], AbstractContextManager[IdentityUnitOfWork]],
    workspace_id: str,
    rows: Iterable[Parsed],
    listeners: Sequence[IdentityListener] = (),
    clock: Callable[[], float],
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[ImportSummary], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> ImportSummary:
    """Import every row, one transaction per chunk; `InvalidImportFile` when the file holds no row.

    `stop` is asked after each committed chunk: once it answers True the import ends there, with
    `stopped` set when rows were left (a Ctrl-C that waits for the chunk it interrupts).
    """
    summary = ImportSummary()
    with _full_collections_paused():
        for chunk in _read_ahead(_chunks(_yielding(rows), chunk_rows)):
            if stop is not None and stop() and summary.rows:
                summary.stopped = True
                break
            usable = [r for r in chunk if isinstance(r, ImportRow)]
            rejections = [r for r in chunk if isinstance(r, Rejection)]
            if usable:
                with new_uow() as uow:
                    result = import_chunk(
                        uow=uow, workspace_id=workspace_id, rows=usable, listeners=listeners, now=clock()
                    )
                summary.created += result.created
                summary.updated += result.updated
                rejections += result.rejections
            for rejection in sorted(rejections, key=lambda r: r.line):
                summary.reject(rejection)
            summary.rows += len(chunk)
            summary.committed += len(chunk)
            if progress is not None:
                progress(summary)
    if not summary.rows:
        raise InvalidImportFile("The file has no rows, only a header")
    return summary
