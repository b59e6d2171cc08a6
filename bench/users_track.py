"""Benchmark: /users/track use case, 75 objects per request against one object per request.

    .venv/bin/python bench/users_track.py                          # 30,000 users, SQLite and PostgreSQL
    .venv/bin/python bench/users_track.py --users 1500 --backend sqlite   # smoke run

Seeds N identified users with executemany, then sends the same updates twice through the
`track_users` use case (one transaction each, as the HTTP handler runs it): in requests of 75
attributes + 75 events (the batched form clients use), and one object per request (the baseline).
Half the objects update seeded users, half create new ones. Prints objects per second and the ratio.
The seeded tables are analyzed first, as they are in a running database.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, insert, text

from cohorthub.bootstrap import Container, bootstrap
from cohorthub.config import Settings
from cohorthub.identity import services
from cohorthub.store.tables import users
from cohorthub.workspaces import services as workspaces

PG_ADMIN_URL = os.environ.get("COHORTHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
NOW = time.time()


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh database URL on `backend`, dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.sqlite"
        return
    name = f"cohorthub_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(c: Container, workspace_id: str, count: int, prefix: str) -> None:
    """Insert `count` identified users directly."""
    rows = [
        {
            "workspace_id": workspace_id,
            "braze_id": uuid.uuid4().hex[:24],
            "external_id": f"{prefix}{i}",
            "custom_attributes": "{}",
            "created_at": NOW,
            "updated_at": NOW,
        }
        for i in range(count)
    ]
    with c.engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(insert(users), rows[start : start + 5000])
        conn.execute(text("ANALYZE"))  # planner statistics, as autovacuum keeps them in a live database


def objects(prefix: str, count: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(attributes, event) pairs: even ids exist, odd ones are new."""
    return [
        (
            {"external_id": f"{prefix}{i if i % 2 == 0 else count + i}", "plan": "pro", "visits": {"inc": 1}},
            {"external_id": f"{prefix}{i}", "name": "played", "time": "2024-01-01T00:00:00Z"},
        )
        for i in range(count)
    ]


def run(
    c: Container, workspace_id: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]], size: int
) -> float:
    """Send `pairs` in requests of `size` pairs; return objects per second."""
    started = time.perf_counter()
    for start in range(0, len(pairs), size):
        chunk = pairs[start : start + size]
        with c.uow() as uow:
            services.track_users(
                uow=uow,
                workspace_id=workspace_id,
                body={"attributes": [a for a, _ in chunk], "events": [e for _, e in chunk]},
                listeners=c.identity_listeners,
                now=time.time(),
            )
    return 2 * len(pairs) / (time.perf_counter() - started)


def bench(backend: str, count: int) -> None:
    """One backend: batched then per-object, on disjoint users of the same shape."""
    with database(backend) as url:
        c = bootstrap(Settings(database_url=url))
        try:
            with c.uow() as uow:
                ws, _ = workspaces.create_workspace(uow=uow, name="bench", now=NOW)
            baseline_count = max(count // 10, 150)
            seed(c, ws.id, count, "b")
            seed(c, ws.id, baseline_count, "s")
            batched = run(c, ws.id, objects("b", count), 75)
            single = run(c, ws.id, objects("s", baseline_count), 1)
            print(
                f"{backend:10} batched (75/request): {batched:9,.0f} objects/s   "
                f"one per request: {single:8,.0f} objects/s   ratio {batched / single:5.1f}x"
            )
        finally:
            c.close()


def main() -> None:
    """Parse arguments and run each backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30_000, help="objects per array in the batched run")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        bench(backend, args.users)


if __name__ == "__main__":
    main()
