"""The local sync state: the last acknowledged membership of each cohort, in SQLite.

A cohort is keyed by (endpoint, SHA-256 of the data import key, partner, cohort id); the key
itself is never stored. Membership lives as one newline-joined blob per (id type, bucket)
(``snapshot``). Each acknowledged chunk is appended to ``journal`` in its own transaction, so a
crash loses at most the chunk in flight; ``compact`` folds the journal into the snapshot.
Use ``":memory:"`` as the path for an in-memory store (tests, dry runs in notebooks).
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .chunking import Chunk
from .diff import BucketKey, bucket_of, split_blob
from .errors import StateError
from .model import Target

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cohorts (
    key TEXT PRIMARY KEY, endpoint TEXT NOT NULL, data_import_key_sha256 TEXT NOT NULL,
    partner TEXT NOT NULL, cohort_id TEXT NOT NULL, name_sent TEXT, created_at TEXT,
    last_attempt_at TEXT, last_success_at TEXT, last_error TEXT,
    members INTEGER NOT NULL DEFAULT 0, adds_sent INTEGER NOT NULL DEFAULT 0,
    removes_sent INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS snapshot (
    key TEXT NOT NULL, ns TEXT NOT NULL, bucket INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (key, ns, bucket)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY, key TEXT NOT NULL, ns TEXT NOT NULL, bucket INTEGER NOT NULL,
    ident BLOB NOT NULL, removed INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS journal_by_bucket ON journal (key, ns, bucket, seq);
"""


@dataclass(frozen=True)
class CohortState:
    """What the state file knows about one cohort."""

    key: str
    endpoint: str
    partner: str
    cohort_id: str
    name_sent: str | None
    created_at: str | None
    last_attempt_at: str | None
    last_success_at: str | None
    last_error: str | None
    members: int
    adds_sent: int
    removes_sent: int
    failures: int


def cohort_key(target: Target, cohort_id: str) -> str:
    """The state key of a cohort on a target."""
    raw = "\0".join((target.endpoint, target.data_import_key.fingerprint(), target.partner, cohort_id))
    return hashlib.sha256(raw.encode()).hexdigest()


class SnapshotMembership:
    """The acknowledged membership of one cohort, read bucket by bucket from the snapshot."""

    def __init__(self, conn: sqlite3.Connection, key: str) -> None:
        self._conn = conn
        self._key = key

    def keys(self) -> Iterable[BucketKey]:
        """The (namespace, bucket) pairs that have members."""
        rows = self._conn.execute("SELECT ns, bucket FROM snapshot WHERE key = ?", (self._key,))
        return [(str(ns), int(bucket)) for ns, bucket in rows]

    def members(self, namespace: str, bucket: int) -> Collection[bytes]:
        """The members of one bucket."""
        row = self._conn.execute(
            "SELECT data FROM snapshot WHERE key = ? AND ns = ? AND bucket = ?",
            (self._key, namespace, bucket),
        ).fetchone()
        return split_blob(bytes(row[0])) if row else []

    def all_members(self) -> set[tuple[str, str]]:
        """Every (namespace, identifier): for tests and small cohorts only."""
        return {(ns, ident.decode()) for ns, bucket in self.keys() for ident in self.members(ns, bucket)}


class StateStore:
    """The SQLite state file (one connection; not shared between threads)."""

    def __init__(self, path: str | Path) -> None:
        try:
            if str(path) != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise StateError(
                    f"{path}: state schema {version} is newer than this client ({SCHEMA_VERSION})"
                )
            self._conn.executescript(_SCHEMA)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot open state file {path}: {exc}") from exc

    def close(self) -> None:
        """Close the file."""
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            if self._conn.in_transaction:  # one an interrupt (Ctrl-C) cut short in COMMIT or ROLLBACK
                self._conn.execute("ROLLBACK")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StateError(f"state file error: {exc}") from exc

    def ensure(self, target: Target, cohort_id: str) -> CohortState:
        """The state of a cohort, created empty on first use."""
        key = cohort_key(target, cohort_id)
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO cohorts (key, endpoint, data_import_key_sha256, partner, cohort_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, target.endpoint, target.data_import_key.fingerprint(), target.partner, cohort_id),
            )
        state = self.get(key)
        assert state is not None
        return state

    def get(self, key: str) -> CohortState | None:
        """The state of one cohort by key."""
        rows = self._select("WHERE key = ?", (key,))
        return rows[0] if rows else None

    def cohorts(self) -> list[CohortState]:
        """Every cohort in the file."""
        return self._select("ORDER BY endpoint, partner, cohort_id", ())

    def _select(self, clause: str, args: tuple[str, ...]) -> list[CohortState]:
        try:
            rows = self._conn.execute(
                "SELECT key, endpoint, partner, cohort_id, name_sent, created_at, last_attempt_at,"
                " last_success_at, last_error, members, adds_sent, removes_sent, failures FROM cohorts "
                + clause,
                args,
            ).fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"state file error: {exc}") from exc
        return [CohortState(*row) for row in rows]

    def previous(self, key: str) -> SnapshotMembership:
        """The acknowledged membership (the journal is folded in first)."""
        self.compact(key)
        return SnapshotMembership(self._conn, key)

    def record_name(self, key: str, name: str, created_at: str) -> None:
        """The name endpoint acknowledged ``name``."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE cohorts SET name_sent = ?, created_at = ? WHERE key = ?", (name, created_at, key)
            )

    def record_ack(self, key: str, chunk: Chunk) -> None:
        """One chunk was acknowledged: journal its identifiers, in one transaction."""
        rows = [
            (key, ns, bucket_of(raw), raw, int(chunk.should_remove))
            for ns, ids in chunk.groups.items()
            for raw in (ident.encode() for ident in ids)
        ]
        column = "removes_sent" if chunk.should_remove else "adds_sent"
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO journal (key, ns, bucket, ident, removed) VALUES (?, ?, ?, ?, ?)", rows
            )
            conn.execute(f"UPDATE cohorts SET {column} = {column} + ? WHERE key = ?", (chunk.count, key))

    def record_attempt(self, key: str, at: datetime) -> None:
        """A sync started."""
        with self._transaction() as conn:
            conn.execute("UPDATE cohorts SET last_attempt_at = ? WHERE key = ?", (at.isoformat(), key))

    def record_success(self, key: str, at: datetime, members: int) -> None:
        """A sync finished: every change was acknowledged."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE cohorts SET last_success_at = ?, members = ?, last_error = NULL WHERE key = ?",
                (at.isoformat(), members, key),
            )

    def record_failure(self, key: str, error: str) -> None:
        """A sync failed (what was acknowledged before stays recorded)."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE cohorts SET failures = failures + 1, last_error = ? WHERE key = ?", (error[:500], key)
            )

    def compact(self, key: str) -> int:
        """Fold the journal of one cohort into its snapshot; returns the journal rows folded."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT ns, bucket, ident, removed FROM journal WHERE key = ? ORDER BY ns, bucket, seq",
                (key,),
            )
            folded = 0
            for (ns, bucket), entries in itertools.groupby(rows, key=lambda row: (row[0], row[1])):
                found = conn.execute(
                    "SELECT data FROM snapshot WHERE key = ? AND ns = ? AND bucket = ?", (key, ns, bucket)
                ).fetchone()
                members = set(split_blob(bytes(found[0]))) if found else set()
                for _, _, ident, removed in entries:
                    (members.discard if removed else members.add)(bytes(ident))
                    folded += 1
                if members:
                    conn.execute(
                        "INSERT OR REPLACE INTO snapshot (key, ns, bucket, data) VALUES (?, ?, ?, ?)",
                        (key, ns, bucket, b"\n".join(members)),
                    )
                else:
                    conn.execute(
                        "DELETE FROM snapshot WHERE key = ? AND ns = ? AND bucket = ?", (key, ns, bucket)
                    )
            conn.execute("DELETE FROM journal WHERE key = ?", (key,))
        return folded

    def import_members(self, key: str, buckets: Iterable[tuple[str, int, list[bytes]]]) -> None:
        """Replace a cohort's acknowledged membership with (namespace, bucket, identifiers) rows.

        For adopting a membership already known to be on the server (and for benchmarks);
        identifiers must be in the bucket ``diff.bucket_of`` gives them.
        """
        with self._transaction() as conn:
            conn.execute("DELETE FROM snapshot WHERE key = ?", (key,))
            conn.execute("DELETE FROM journal WHERE key = ?", (key,))
            conn.executemany(
                "INSERT OR REPLACE INTO snapshot (key, ns, bucket, data) VALUES (?, ?, ?, ?)",
                ((key, ns, bucket, b"\n".join(set(ids))) for ns, bucket, ids in buckets if ids),
            )

    def reset(self, keys: Iterable[str]) -> int:
        """Forget membership and name of these cohorts so the next sync resends everything."""
        count = 0
        with self._transaction() as conn:
            for key in keys:
                conn.execute("DELETE FROM snapshot WHERE key = ?", (key,))
                conn.execute("DELETE FROM journal WHERE key = ?", (key,))
                cursor = conn.execute(
                    "UPDATE cohorts SET name_sent = NULL, members = 0, last_error = NULL WHERE key = ?",
                    (key,),
                )
                count += cursor.rowcount
        return count
