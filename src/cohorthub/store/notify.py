"""Wake-ups across processes on PostgreSQL: NOTIFY once a cohort change has committed, and a LISTEN
thread that wakes this process's messaging worker (API processes of `serve --workers N` import while
the parent process sends)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Engine

log = logging.getLogger("cohorthub.messaging")
CHANNEL = "cohorthub_messaging"


class PgNotifier:
    """A cohort change listener that tells every listening process that a cohort changed."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def cohort_changed(self, workspace_id: str, partner: str, cohort_id: str) -> None:
        """NOTIFY the channel (a wake-up only: listeners read the change log themselves)."""
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql(f"NOTIFY {CHANNEL}")
                conn.commit()
        except Exception:  # the import has committed: a lost wake-up only waits for the poll
            log.exception("could not notify the messaging workers")


def listen(engine: Engine, wake: Callable[[], None], stop: threading.Event) -> threading.Thread:
    """Call `wake` on every notification until `stop` is set (reconnecting after an error)."""
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def run() -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            wake()
            except psycopg.Error as exc:  # the server restarted or went away: one line, then retry
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.warning("messaging wake-ups: the LISTEN connection failed (%s); retrying in 1 s", reason)
                stop.wait(1.0)

    thread = threading.Thread(target=run, name="messaging-listen", daemon=True)
    thread.start()
    return thread
