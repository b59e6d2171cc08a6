"""Benchmark: bulk user import of a CSV file through the service, against the store's floor.

    .venv/bin/python bench/users_import.py                                  # 50k users, both stores
    .venv/bin/python bench/users_import.py --users 1000000                  # the real figure
    .venv/bin/python bench/users_import.py --users 20000 --backend sqlite   # smoke run

Writes N users to a CSV (external_id, names, email, country, time zone and four custom
attributes: a string, an integer, a boolean and a time), then on a fresh database:

- **import**: `identity.imports.import_users` over the file (parsing, the identity rules, chunked
  commits, change stamps: everything `cohorthub users import` and `POST /users/import` do but
  the upload), first with every user new, then again (every user updated, nothing changes);
- **baseline (the ratio)**: the same rows, already converted to stored values, put into the users
  table by multi-row INSERTs (PostgreSQL: by COPY, its fastest way in) in transactions of the
  same size: the store's floor on this machine, with no parsing and no rules. The ratio says how
  much of the store's speed the import keeps;
- **track path (for context)**: the same users (the first `--track-users` of them) through the
  `/users/track` use case, 75 objects per call (one transaction each), as a client without bulk
  import would send them.

Prints users per second, both ratios and the process's CPU per user (load-independent) for each store.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import _http

TARGET = 100_000
#: The process's CPU seconds of each floor and import run, in order (load-independent, unlike wall time).
CPU: list[float] = []
COLUMNS = [
    "external_id",
    "first_name",
    "last_name",
    "email",
    "country",
    "time_zone",
    "plan",
    "visits",
    "vip",
    "signed_up",
]


def user(i: int) -> list[str]:
    """One CSV row."""
    return [
        f"user-{i}",
        "Ann",
        f"Lee{i % 97}",
        f"user{i}@example.com",
        ("ES", "FR", "DE", "US")[i % 4],
        "Europe/Madrid",
        ("free", "pro")[i % 2],
        str(i % 1000),
        ("true", "false")[i % 3 == 0],
        f"2024-01-{1 + i % 28:02d}T10:00:00Z",
    ]


def write_csv(path: Path, users: int) -> None:
    """The file to import."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(user(i) for i in range(users))


def stored_row(workspace_id: str, i: int, now: float, stamp: int, braze_id: str) -> tuple[Any, ...]:
    """The users row the import stores for user i (values and braze id shaped as the import makes them)."""
    r = user(i)
    custom = {
        "plan": r[6],
        "signed_up": {"$time": r[9][:-1] + ".000Z"},
        "vip": r[8] == "true",
        "visits": int(r[7]),
    }
    attrs = json.dumps(custom, separators=(",", ":"), sort_keys=True)
    return (workspace_id, braze_id, r[0], r[1], r[2], r[3], r[4], r[5], attrs, now, now, stamp)


def fresh(database_url: str) -> tuple[Any, str]:
    """A wired container on a migrated database with one workspace."""
    from cohorthub.bootstrap import bootstrap
    from cohorthub.config import Settings
    from cohorthub.workspaces import services as workspaces

    c = bootstrap(Settings(database_url=database_url))
    with c.uow() as uow:
        ws, _key = workspaces.create_workspace(uow=uow, name="bench", now=time.time())
    return c, ws.id


def run_import(c: Any, workspace_id: str, path: Path) -> tuple[float, Any]:
    """Import the file; seconds and summary (the process's CPU seconds in `CPU[-1]`)."""
    from cohorthub.identity.bulk import parse_rows

    cpu = time.process_time()
    started = time.perf_counter()
    with path.open(encoding="utf-8-sig", newline="") as lines:
        summary = c.import_users(workspace_id, parse_rows("csv", lines))
    CPU.append(time.process_time() - cpu)
    return time.perf_counter() - started, summary


def run_floor(c: Any, workspace_id: str, users: int) -> float:
    """Seconds to insert the precomputed rows (multi-row INSERTs; PostgreSQL: COPY), a chunk a transaction."""
    pg = c.engine.dialect.name == "postgresql"
    mark = "%s" if pg else "?"
    names = "workspace_id, braze_id, external_id, first_name, last_name, email, country, time_zone, "
    names += "custom_attributes, created_at, updated_at" + ("" if pg else ", change_id")
    width = names.count(",") + 1
    now = time.time()
    from cohorthub.identity.model import new_braze_ids
    from cohorthub.store.pg_rows import copy_rows
    from cohorthub.store.tables import users as users_table

    ids = new_braze_ids(now, users)
    rows = [stored_row(workspace_id, i, now, i + 1, ids[i])[:width] for i in range(users)]
    per = 500
    cpu = time.process_time()
    started = time.perf_counter()
    with c.engine.connect() as conn:
        for start in range(0, users, c.import_chunk_rows):
            chunk = rows[start : start + c.import_chunk_rows]
            if pg:  # PostgreSQL takes rows fastest by COPY (multi-row INSERTs ran at a quarter of it)
                copy_rows(conn, users_table, names.split(", "), chunk)
                conn.commit()
                continue
            for k in range(0, len(chunk), per):
                part = chunk[k : k + per]
                values = ", ".join([f"({', '.join([mark] * width)})"] * len(part))
                sql = f"INSERT INTO users ({names}) VALUES {values}"
                conn.exec_driver_sql(sql, tuple(v for row in part for v in row))
            conn.commit()
    if not pg:
        with c.engine.connect() as conn:
            conn.exec_driver_sql("UPDATE user_change_seq SET value = ?", (users,))
            conn.commit()
    CPU.append(time.process_time() - cpu)
    return time.perf_counter() - started


def run_track(c: Any, workspace_id: str, users: int) -> float:
    """Seconds to send the same users through the /users/track use case, 75 per call."""
    from cohorthub.identity import services

    bodies = []
    for start in range(0, users, 75):
        attributes = []
        for i in range(start, min(users, start + 75)):
            r = user(i)
            obj: dict[str, Any] = dict(zip(COLUMNS[:6], r[:6], strict=True))
            obj.update(plan=r[6], visits=int(r[7]), vip=r[8] == "true", signed_up=r[9])
            attributes.append(obj)
        bodies.append({"attributes": attributes})
    started = time.perf_counter()
    for body in bodies:
        with c.uow() as uow:
            services.track_users(
                uow=uow, workspace_id=workspace_id, body=body, listeners=c.identity_listeners, now=c.now()
            )
    return time.perf_counter() - started


def bench(backend: str, make_url: Any, path: Path, users: int, track_users: int) -> None:
    """Floor, import (new, then again), track path: each on a fresh database."""
    results: dict[str, float] = {}
    cpu: dict[str, float] = {}
    with make_url() as url:
        c, ws = fresh(url)
        results["floor"] = users / run_floor(c, ws, users)
        cpu["floor"] = CPU[-1] / users
        c.close()
    with make_url() as url:
        c, ws = fresh(url)
        seconds, summary = run_import(c, ws, path)
        assert summary.created == users, summary
        results["import"], cpu["import"] = users / seconds, CPU[-1] / users
        seconds, summary = run_import(c, ws, path)
        assert summary.updated == users, summary
        results["again"], cpu["again"] = users / seconds, CPU[-1] / users
        c.close()
    with make_url() as url:
        c, ws = fresh(url)
        results["track"] = track_users / run_track(c, ws, track_users)
        c.close()
    floor, track = results["floor"], results["track"]
    print(f"{backend} ({users:,} users, {c.import_chunk_rows:,} rows per transaction):")
    floor_cpu = f"CPU {cpu['floor'] * 1e6:.1f} µs/user"
    floor_name = "bare COPY" if backend == "postgresql" else "bare multi-row INSERT"
    print(f"  baseline: {floor_name:24} {floor:10,.0f} users/s   {floor_cpu}")
    print(f"  track path, 75 per call            {track:10,.0f} users/s (the first {track_users:,})")
    for name, key in (("import, new users", "import"), ("import again (updates)", "again")):
        rate = results[key]
        print(
            f"  {name:32} {rate:10,.0f} users/s   ratio to baseline {rate / floor:.2f}   "
            f"to track path {rate / track:.1f}   to target {TARGET:,}: {rate / TARGET:.2f}   "
            f"CPU {cpu[key] * 1e6:.1f} µs/user ({cpu[key] / cpu['floor']:.2f} of baseline's)"
        )


def main() -> None:
    """Parse arguments, write the file, run each backend."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50_000, help="users in the file")
    parser.add_argument("--track-users", type=int, default=50_000, help="users sent the track way")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "users.csv"
        write_csv(path, args.users)
        print(f"{path.stat().st_size / 1e6:.1f} MB CSV, {args.users:,} users")
        counter = iter(range(1_000_000))

        from contextlib import contextmanager

        @contextmanager
        def sqlite_url() -> Any:
            yield f"sqlite:///{Path(tmp) / f'bench{next(counter)}.sqlite'}"

        if args.backend in ("sqlite", "both"):
            bench("sqlite", sqlite_url, path, args.users, min(args.users, args.track_users))
        if args.backend in ("postgresql", "both"):
            bench("postgresql", _http.postgres_database, path, args.users, min(args.users, args.track_users))


if __name__ == "__main__":
    main()
