"""Benchmark: /users/track over real HTTP, 75 attributes (+ 75 events) per request, N clients.

    .venv/bin/python bench/users_track.py                                   # 200k users, both stores
    .venv/bin/python bench/users_track.py --users 30000 --backend sqlite    # smoke run

Starts cohorthub (uvicorn, one process unless --workers) on a fresh database with one workspace,
then `--clients` connections post requests of `--batch` attributes objects, each with a custom
event (so every request also writes the Currents outbox): first every user is new (the users table
grows from empty: the plans of the lookups must follow), then the same users are updated. The
baseline is a parse-only Starlette app fed the same bodies by the same clients. Prints attribute
objects per second, the ratio to the baseline and to the target, and the server's CPU time per
request (steadier than the rate on a busy machine).

The store's floor (`storage_floor`) is measured in the same run: per request, only the SQL a track
of those objects cannot do without, on connections of the product's engine (its pragmas, its `BEGIN
IMMEDIATE` on SQLite): look the 75 users up, write them (inserted, then updated), and with events
insert the 75 event rows and the 75 Currents outbox rows. No HTTP, no parsing, no rules. PostgreSQL:
as many connections as clients, a commit a request; SQLite, which has one writer: one connection,
a commit every `--clients` requests, as the product's group commit does with that many clients. A
target above the floor cannot be met on that machine with this store and schema.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _http

TARGETS = {"sqlite": 25_000, "postgresql": 10_000}


def workspace_key(database_url: str) -> str:
    """Migrate, create a workspace; return its REST API key."""
    from cohorthub.bootstrap import bootstrap
    from cohorthub.config import Settings
    from cohorthub.workspaces import services as workspaces

    c = bootstrap(Settings(database_url=database_url))
    try:
        with c.uow() as uow:
            _ws, key = workspaces.create_workspace(uow=uow, name="bench", now=time.time())
        return key.key
    finally:
        c.close()


def bodies(users: int, batch: int, round_: int, events: bool) -> list[bytes]:
    """Requests naming users 0..users-1 in blocks of `batch`, spread so concurrent requests differ."""
    out = []
    for start in range(0, users, batch):
        ids = [f"user-{i}" for i in range(start, min(users, start + batch))]
        attributes = [
            {"external_id": x, "plan": "pro" if round_ else "free", "visits": {"inc": 1}, "score": i}
            for i, x in enumerate(ids)
        ]
        body: dict[str, object] = {"attributes": attributes}
        if events:
            body["events"] = [
                {"external_id": x, "name": "played", "time": "2024-01-01T00:00:00Z"} for x in ids
            ]
        out.append(json.dumps(body).encode())
    return out


def storage_floor(
    database_url: str, users: int, batch: int, events: bool, clients: int
) -> tuple[float, float]:
    """Seconds for the floor's new users, then for the same users updated (see the module docstring).

    Its users are others than the product's (`floor-N`), in the same workspace and tables.
    """
    import msgspec

    from cohorthub.bootstrap import bootstrap
    from cohorthub.config import Settings
    from cohorthub.ids import object_ids, uuid7

    c = bootstrap(Settings(database_url=database_url), run_migrations=False)
    pg = c.engine.dialect.name == "postgresql"
    with c.engine.connect() as conn:
        workspace_id = conn.exec_driver_sql("SELECT id FROM workspaces").scalar_one()
    now = time.time()
    blocks = [list(range(start, min(users, start + batch))) for start in range(0, users, batch)]
    braze = object_ids(now, users)

    def custom(i: int, round_: int) -> str:
        return json.dumps({"plan": "pro" if round_ else "free", "visits": 1 + round_, "score": i % batch})

    def envelope(i: int) -> bytes:  # the size and shape of a CustomEvent the product records
        user = {"user_id": braze[i], "external_user_id": f"floor-{i}"}
        props = {"name": "played", "custom_properties": {}, "app_group_id": workspace_id}
        return msgspec.json.encode({"event_type": "users.behaviors.CustomEvent", "id": uuid7(),
                                    "time": 1704067200, "user": user, "properties": props})  # fmt: skip

    def request(conn: Any, block: list[int], round_: int) -> None:
        ids = [f"floor-{i}" for i in block]
        if pg:
            find = "SELECT num FROM users WHERE workspace_id = %s AND external_id = ANY(%s)"
            found = conn.exec_driver_sql(find, (workspace_id, ids)).scalars().all()
        else:
            marks = ", ".join("?" * len(ids))
            find = f"SELECT num FROM users WHERE workspace_id = ? AND external_id IN ({marks})"
            found = conn.exec_driver_sql(find, (workspace_id, *ids)).scalars().all()
        values = [custom(i, round_) for i in block]
        # updates go in user number order; which of the block's values each user gets does not matter
        # to the floor (the same bytes are written)
        nums = sorted(found)
        if round_ == 0 and pg:
            sql = (
                "INSERT INTO users (workspace_id, braze_id, external_id, custom_attributes, created_at, "
                "updated_at) SELECT %s, b, x, a, %s, %s FROM unnest(%b::text[], %b::text[], %b::text[]) "
                "AS t(b, x, a) RETURNING num"
            )
            nums = conn.exec_driver_sql(sql, (workspace_id, now, now, [braze[i] for i in block], ids, values))
            nums = nums.scalars().all()
        elif round_ == 0:
            top = conn.exec_driver_sql(
                "UPDATE user_change_seq SET value = value + ? RETURNING value", (len(block),)
            ).scalar_one()
            rows = [(workspace_id, braze[i], x, v, now, now, top - len(block) + 1 + n)
                    for n, (i, x, v) in enumerate(zip(block, ids, values, strict=True))]  # fmt: skip
            sql = (
                "INSERT INTO users (workspace_id, braze_id, external_id, custom_attributes, created_at, "
                f"updated_at, change_id) VALUES {', '.join(['(?, ?, ?, ?, ?, ?, ?)'] * len(rows))} "
                "RETURNING num"
            )
            nums = conn.exec_driver_sql(sql, tuple(v for r in rows for v in r)).scalars().all()
        elif pg:
            sql = (
                "UPDATE users SET custom_attributes = t.a, updated_at = %s "
                "FROM unnest(%b::bigint[], %b::text[]) AS t(n, a) WHERE num = t.n"
            )
            conn.exec_driver_sql(sql, (now, nums, values))
        else:
            top = conn.exec_driver_sql(
                "UPDATE user_change_seq SET value = value + ? RETURNING value", (len(nums),)
            ).scalar_one()
            params = [v for n, (num, a) in enumerate(zip(nums, values, strict=True))
                      for v in (a, now, top - len(nums) + 1 + n, num)]  # fmt: skip
            sql = (
                "UPDATE users SET custom_attributes = v.column1, updated_at = v.column2, "
                f"change_id = v.column3 FROM (VALUES {', '.join(['(?, ?, ?, ?)'] * len(nums))}) AS v "
                "WHERE num = v.column4"
            )
            conn.exec_driver_sql(sql, tuple(params))
        if events:
            payloads = [envelope(i) for i in block]
            ids_ = [uuid7() for _ in block]
            if pg:
                conn.exec_driver_sql(
                    "INSERT INTO custom_events (workspace_id, user_num, name, time, properties, app_id) "
                    "SELECT %s, u, 'played', 1704067200, '{}', NULL FROM unnest(%b::bigint[]) AS u",
                    (workspace_id, list(nums)),
                )
                conn.exec_driver_sql(
                    "INSERT INTO outbox (workspace_id, event_id, event_type, time, payload, created_at) "
                    "SELECT %s, e, 'users.behaviors.CustomEvent', 1704067200, p, %s "
                    "FROM unnest(%b::text[], %b::bytea[]) AS x(e, p)",
                    (workspace_id, now, ids_, payloads),
                )
            else:
                happened = [(workspace_id, n, "played", 1704067200.0, "{}") for n in nums]
                conn.exec_driver_sql(
                    "INSERT INTO custom_events (workspace_id, user_num, name, time, properties) "
                    f"VALUES {', '.join(['(?, ?, ?, ?, ?)'] * len(happened))}",
                    tuple(v for r in happened for v in r),
                )
                boxed = [(workspace_id, e, "users.behaviors.CustomEvent", 1704067200, p, now)
                         for e, p in zip(ids_, payloads, strict=True)]  # fmt: skip
                conn.exec_driver_sql(
                    "INSERT INTO outbox (workspace_id, event_id, event_type, time, payload, created_at) "
                    f"VALUES {', '.join(['(?, ?, ?, ?, ?, ?)'] * len(boxed))}",
                    tuple(v for r in boxed for v in r),
                )

    errors: list[BaseException] = []
    seconds: list[float] = []
    for round_ in (0, 1):

        def worker(slot: int, round_: int = round_) -> None:
            try:
                with c.engine.connect() as conn:
                    if pg:  # concurrent writers, a commit each
                        for block in blocks[slot::clients]:
                            request(conn, block, round_)
                            conn.commit()
                        return
                    # SQLite has one writer: one connection, a commit every `clients` requests (the
                    # product's writer commits the requests queued behind each other at once)
                    for n, block in enumerate(blocks, 1):
                        request(conn, block, round_)
                        if n % clients == 0 or n == len(blocks):
                            conn.commit()
            except BaseException as exc:  # reported below
                errors.append(exc)

        seconds.append(_http.in_threads(worker, clients if pg else 1))
        if errors:
            c.close()
            raise errors[0]
    c.close()
    return seconds[0], seconds[1]


def processed(body: dict[str, object]) -> int:
    """Attribute objects a response says were processed."""
    value = body.get("attributes_processed", 0)
    return value if isinstance(value, int) else 0


def bench(backend: str, database_url: str, args: argparse.Namespace) -> None:
    """Baseline, then cohorthub: new users, then updates of the same users."""
    key = workspace_key(database_url)
    new, again = (bodies(args.users, args.batch, r, not args.no_events) for r in (0, 1))
    with _http.server(__file__, "--serve-baseline") as url:
        base_cpu = _http.server_cpu_seconds(url)
        base_s, _ = _http.run_clients(url, "/users/track", new, args.clients, lambda _b: 0)
        base_cpu = _http.server_cpu_seconds(url) - base_cpu
    base = args.users / base_s
    serve = ["--serve", database_url, "--workers", str(args.workers)]
    headers = {"authorization": f"Bearer {key}"}
    with _http.server(__file__, *serve) as url:
        cpu = [_http.server_cpu_seconds(url)]
        new_s, created = _http.run_clients(url, "/users/track", new, args.clients, processed, headers)
        cpu.append(_http.server_cpu_seconds(url))
        upd_s, updated = _http.run_clients(url, "/users/track", again, args.clients, processed, headers)
        cpu.append(_http.server_cpu_seconds(url))
    floor = storage_floor(database_url, args.users, args.batch, not args.no_events, args.clients)
    target = TARGETS[backend]
    print(f"{backend} ({args.clients} clients, {args.workers} process(es), {args.batch}/request):")
    requests = len(new)
    base_ms = base_cpu / requests * 1e3
    print(f"  baseline (parse only):  {base:10,.0f} objects/s   server CPU {base_ms:.2f} ms/request")
    what = "lookup, users, events, outbox, commit" if not args.no_events else "lookup, users, commit"
    print(
        f"  storage floor (bare SQL, {what}): new {args.users / floor[0]:,.0f} / updated "
        f"{args.users / floor[1]:,.0f} objects/s   to target: {args.users / floor[0] / target:.2f} / "
        f"{args.users / floor[1] / target:.2f}"
    )
    for i, (name, n, s) in enumerate((("new users", created, new_s), ("updates", updated, upd_s))):
        rate = n / s
        print(
            f"  {name:10} {rate:10,.0f} attribute objects/s ({n:,} in {s:.1f} s)   "
            f"ratio to baseline {rate / base:.3f}   to the floor {rate * floor[i] / args.users:.2f}   "
            f"to target {target:,}: {rate / target:.2f}   "
            f"server CPU {(cpu[i + 1] - cpu[i]) / requests * 1e3:.2f} ms/request"
        )


def main() -> None:
    """Parse arguments and run each backend."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200_000, help="users to create, then update")
    parser.add_argument("--batch", type=int, default=75, help="attribute objects per request (max 75)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client connections")
    parser.add_argument("--workers", type=int, default=1, help="API server processes")
    parser.add_argument("--no-events", action="store_true", help="attributes only (no outbox writes)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args, _ = parser.parse_known_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            bench("sqlite", f"sqlite:///{Path(tmp) / 'bench.sqlite'}", args)
    if args.backend in ("postgresql", "both"):
        with _http.postgres_database() as url:
            bench("postgresql", url, args)


if __name__ == "__main__":
    _http.main_server(sys.argv)
    main()
