"""Planner statistics that follow the identity tables as they grow (PostgreSQL).

The planner estimates from the statistics of the last `ANALYZE`. With autovacuum off, late, or
still below its threshold, a table grown from empty (or a new workspace in a table analyzed
before it existed) looks like a handful of rows, and a lookup by identifier may then read every
row of the workspace through the wrong index, once per request. So each process counts the
identity rows it inserts and analyzes the identity tables itself once they have doubled (at least
`MIN_GROWTH` rows) since it last did: about three times per order of magnitude of growth. The
planner scales the analyzed row counts to the table's current size itself, so statistics up to
half as old as the table still plan index lookups; an `ANALYZE` of a large table samples 30,000
rows (~0.1–0.2 s of server CPU), and analyzing at every fifth of growth cost ~15 % of the server's
CPU while 100,000 users were loaded through `/users/track`.

The `ANALYZE` never runs inside the request that crossed the threshold: the request's unit of
work marks its connection (`note_inserted`), and once its transaction has committed
(`after_commit`, so the new rows are visible) one background thread per engine analyzes on a
connection of its own. A request never waits for it, nor holds its locks while it runs; a
threshold crossed while an `ANALYZE` runs asks for one more run after it.
"""

from __future__ import annotations

import logging
import threading
import weakref

from sqlalchemy import Connection, Engine

from cohorthub.errors import ResourceLocked

log = logging.getLogger(__name__)

#: Inserted rows that make a first `ANALYZE` worth its cost.
MIN_GROWTH = 500
TABLES = "users, user_aliases, user_devices"
_PENDING = "cohorthub.analyze_after_commit"


class _Analyzer:
    """Counts one engine's identity inserts; runs its `ANALYZE` on a thread of its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = weakref.ref(engine)
        self.lock = threading.Condition()
        self.rows = 0
        self.analyzed = 0  # the users table's size at this process's last ANALYZE
        self.wanted = False  # a run asked for and not started yet
        self.running = False
        self.runs = 0  # finished runs, for `settle`

    def grew(self, rows: int) -> bool:
        """Count inserted rows; True when they call for a new ANALYZE."""
        with self.lock:
            self.rows += rows
            if self.rows < max(MIN_GROWTH, self.analyzed):
                return False
            self.rows = 0
            return True

    def request(self) -> None:
        with self.lock:
            self.wanted = True
            if self.running:
                return  # the running thread takes it after its current run
            self.running = True
        threading.Thread(target=self._run, name="cohorthub-analyze", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self.lock:
                if not self.wanted:
                    self.running = False
                    self.lock.notify_all()
                    return
                self.wanted = False
            size = self._analyze()
            with self.lock:
                if size is not None:
                    self.analyzed = size
                self.runs += 1
                self.lock.notify_all()

    def _analyze(self) -> int | None:
        engine = self.engine()
        if engine is None:
            return None
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"ANALYZE {TABLES}")
                size = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE relname = 'users'").scalar()
                conn.commit()
        except ResourceLocked:  # a concurrent ANALYZE (or autovacuum) holds the lock: it does the work
            return None
        except Exception:  # a background refresh never takes the process down: logged, tried again later
            log.warning("ANALYZE of the identity tables failed", exc_info=True)
            return None
        return max(int(size or 0), 0)

    def settle(self, timeout: float) -> bool:
        """Wait until no run is wanted or running; False if `timeout` passed first."""
        with self.lock:
            return self.lock.wait_for(lambda: not self.running and not self.wanted, timeout)


_analyzers: weakref.WeakKeyDictionary[Engine, _Analyzer] = weakref.WeakKeyDictionary()
_registry = threading.Lock()


def _analyzer(engine: Engine) -> _Analyzer:
    with _registry:
        analyzer = _analyzers.get(engine)
        if analyzer is None:
            analyzer = _analyzers[engine] = _Analyzer(engine)
        return analyzer


def note_inserted(conn: Connection, rows: int) -> None:
    """Count identity rows this transaction inserted; once they are enough, analyze after its commit."""
    if not rows or conn.dialect.name != "postgresql":
        return
    if _analyzer(conn.engine).grew(rows):
        conn.info[_PENDING] = True


def after_commit(conn: Connection) -> None:
    """Start the `ANALYZE` that a transaction just committed on `conn` asked for, if any."""
    if conn.info.pop(_PENDING, False):
        _analyzer(conn.engine).request()


def after_rollback(conn: Connection) -> None:
    """Forget a request for `ANALYZE` made by a transaction that did not commit."""
    conn.info.pop(_PENDING, None)


def settle(engine: Engine, timeout: float = 30.0) -> bool:
    """Wait for this engine's pending `ANALYZE` runs to finish (shutdown and tests)."""
    with _registry:
        analyzer = _analyzers.get(engine)
    return analyzer is None or analyzer.settle(timeout)


def runs(engine: Engine) -> int:
    """How many background `ANALYZE` runs this engine has finished."""
    with _registry:
        analyzer = _analyzers.get(engine)
    return 0 if analyzer is None else analyzer.runs
