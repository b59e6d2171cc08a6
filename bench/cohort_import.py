"""Benchmark: partner cohort import over real HTTP, against a bare parse-only ASGI app.

    .venv/bin/python bench/cohort_import.py                      # 1M users, SQLite and PostgreSQL
    .venv/bin/python bench/cohort_import.py --users 20000 --requests 20 --backend sqlite   # smoke run

Seeds N identified users with executemany (not over HTTP), then sends user cohort requests of
1,000 `user_ids` each (every one a new member, so each request makes 1,000 identifier changes)
to cohorthub served by uvicorn (one worker, in a subprocess), and the same bodies to a bare
Starlette app that only parses them. Prints identifier changes per second and the ratio; then
the store's floor for the same bodies (`storage_floor`: the bare SQL an import needs, no HTTP) and
the ratio to it, which says how near the store's ceiling on this machine the import runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _http

NOW = time.time()
TARGETS = {"SQLite": 100_000, "PostgreSQL": 60_000}


# -- seeding -----------------------------------------------------------------------------------


def seed(database_url: str, users: int, external_id: str = "user-{}") -> dict[str, str]:
    """Migrate, create a workspace with Heap enabled, and insert `users` identified users.

    User i gets the external id `external_id.format(i)`.
    """
    from cohorthub.bootstrap import bootstrap
    from cohorthub.config import Settings
    from cohorthub.partners import services as partners
    from cohorthub.workspaces import services as workspaces

    c = bootstrap(Settings(database_url=database_url))
    try:
        with c.uow() as uow:
            ws, rest = workspaces.create_workspace(uow=uow, name="Bench", now=NOW)
        with c.uow() as uow:
            pk = partners.issue_partner_key(uow=uow, partner="heap", now=NOW)
        with c.uow() as uow:
            cs = partners.enable_partner(uow=uow, workspace_id=ws.id, partner="heap", now=NOW).data_import_key
        mark = "?" if c.engine.dialect.name == "sqlite" else "%s"
        sql = (
            "INSERT INTO users (workspace_id, braze_id, external_id, custom_attributes, created_at, "
            f"updated_at) VALUES ({', '.join([mark] * 6)})"
        )
        started = time.perf_counter()
        with c.engine.begin() as conn:
            for start in range(0, users, 50_000):
                rows = [
                    (ws.id, f"{i:024x}", external_id.format(i), "{}", NOW, NOW)
                    for i in range(start, min(users, start + 50_000))
                ]
                conn.exec_driver_sql(sql, rows)
        print(f"  seeded {users:,} users in {time.perf_counter() - started:.1f} s")
    finally:
        c.close()
    return {"partner_api_key": pk, "client_secret": cs, "rest_api_key": rest.key}


# -- the load ----------------------------------------------------------------------------------


def bodies(
    keys: dict[str, str], users: int, requests: int, per_request: int, cohorts: int, order: str = "random"
) -> list[bytes]:
    """Request bodies adding users not yet in the cohort, spread over `cohorts` cohorts.

    `sequential`: consecutive blocks of users; `random`: users drawn at random from the whole
    population (as a partner's cohort is), each at most once.
    """
    import json
    import random

    picks = list(range(min(users, requests * per_request)))
    if order == "random":
        picks = random.Random(7).sample(range(users), len(picks))
    out = []
    for r in range(requests):
        block = [f"user-{picks[(r * per_request + k) % len(picks)]}" for k in range(per_request)]
        partner = {"partner_api_key": keys["partner_api_key"], "client_secret": keys["client_secret"]}
        body = {**partner, "cohort_id": f"bench-{r % cohorts}", "cohort_changes": [{"user_ids": block}]}
        out.append(json.dumps(body).encode())
    return out


def _changes(body: dict[str, Any]) -> int:
    entered, left = body.get("entered", 0), body.get("left", 0)
    return int(entered) + int(left)


def run_load(url: str, payloads: list[bytes], concurrency: int) -> tuple[float, int]:
    """Send every payload (`concurrency` connections); return (seconds, identifier changes)."""
    return _http.run_clients(url, "/partners/heap/cohorts/users", payloads, concurrency, _changes)


def storage_floor(database_url: str, payloads: list[bytes], concurrency: int) -> float:
    """Seconds for the SQL an import of these bodies cannot do without, and nothing else.

    Per body, on `concurrency` connections of the product's engine (its pragmas, its `BEGIN
    IMMEDIATE` on SQLite): resolve the 1,000 external ids in one query, append one change row per
    user found, bump the cohort's version, commit. No HTTP, no parsing, no diff, no bookkeeping:
    the store's ceiling for this load on this machine, one commit a request (the product's SQLite
    writer may commit several requests at once, so it is not a bound the product cannot pass).
    """
    import json

    from cohorthub.bootstrap import bootstrap
    from cohorthub.config import Settings

    c = bootstrap(Settings(database_url=database_url), run_migrations=False)
    pg = c.engine.dialect.name == "postgresql"
    mark = "%s" if pg else "?"
    with c.engine.connect() as conn:
        workspace_id = conn.exec_driver_sql("SELECT id FROM workspaces").scalar_one()
        cohort_pk = conn.exec_driver_sql("SELECT min(pk) FROM cohorts").scalar_one()
    ids_of = [json.loads(p)["cohort_changes"][0]["user_ids"] for p in payloads]
    insert = "INSERT INTO cohort_changes (cohort_pk, version, user_num, entered, at, request_id, reason) "
    row = f"({', '.join([mark] * 7)})"
    bump = f"UPDATE cohorts SET version = version + 1 WHERE pk = {mark}"
    pg_find = (
        "SELECT u.num FROM unnest(%b::text[]) AS t(x) CROSS JOIN LATERAL (SELECT num FROM users "
        "WHERE workspace_id = %s AND external_id = t.x OFFSET 0) AS u"
    )
    pg_insert = f"{insert}SELECT %s, 1000000000, u, true, %s, NULL, 'import' FROM unnest(%b::bigint[]) AS u"
    errors: list[BaseException] = []

    def worker(slot: int) -> None:
        try:
            with c.engine.connect() as conn:
                for ids in ids_of[slot::concurrency]:
                    if pg:  # as the product: one index probe per id, the rows as one array
                        nums = conn.exec_driver_sql(pg_find, (ids, workspace_id)).scalars().all()
                        conn.exec_driver_sql(pg_insert, (cohort_pk, NOW, list(nums)))
                    else:
                        find = "SELECT num FROM users WHERE workspace_id = ? AND external_id IN "
                        find += f"({', '.join('?' * len(ids))})"
                        nums = conn.exec_driver_sql(find, (workspace_id, *ids)).scalars().all()
                        params = [v for n in nums for v in (cohort_pk, 10**9, n, True, NOW, None, "import")]
                        conn.exec_driver_sql(f"{insert}VALUES {', '.join([row] * len(nums))}", tuple(params))
                    conn.exec_driver_sql(bump, (cohort_pk,))
                    conn.commit()
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    elapsed = _http.in_threads(worker, concurrency)
    c.close()
    if errors:
        raise errors[0]
    return elapsed


def bench_backend(name: str, database_url: str, args: argparse.Namespace) -> None:
    """Seed, then measure cohorthub and the baseline on the same bodies."""
    print(f"{name}:")
    keys = seed(database_url, args.users)
    requests = min(args.requests, args.users // args.ids)
    payloads = bodies(keys, args.users, requests + args.cohorts, args.ids, args.cohorts, args.order)
    warmup, measured = payloads[: args.cohorts], payloads[args.cohorts :]
    with _http.server(__file__, "--serve-baseline") as url:
        run_load(url, warmup, args.concurrency)
        base_s, _ = run_load(url, measured, args.concurrency)
    base_rate = len(measured) * args.ids / base_s
    with _http.server(__file__, "--serve", database_url, "--workers", str(args.workers)) as url:
        run_load(url, warmup, args.concurrency)
        elapsed, changes = run_load(url, measured, args.concurrency)
    rate = changes / elapsed
    floor_s = storage_floor(database_url, measured, args.concurrency)
    floor_rate = len(measured) * args.ids / floor_s
    print(f"  baseline (parse only): {base_rate:12,.0f} identifiers/s ({len(measured)} req, {base_s:.2f} s)")
    print(f"  storage floor (bare SQL): {floor_rate:9,.0f} identifiers/s (resolve, log, version, commit)")
    print(f"  cohorthub:             {rate:12,.0f} identifier changes/s ({changes:,} in {elapsed:.2f} s)")
    target = TARGETS[name]
    print(
        f"  ratio cohorthub/baseline: {rate / base_rate:.3f}   to the storage floor: {rate / floor_rate:.2f}"
        f"   to target {target:,}/s: {rate / target:.2f}"
    )


def main() -> None:
    """Parse arguments; run as the benchmark or as one of its servers."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000, help="existing users to seed")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per server")
    parser.add_argument("--ids", type=int, default=1_000, help="identifiers per request (max 1,000)")
    parser.add_argument("--cohorts", type=int, default=4, help="cohorts the requests are spread over")
    parser.add_argument(
        "--clients", "--concurrency", dest="concurrency", type=int, default=4, help="client connections"
    )
    parser.add_argument("--workers", type=int, default=1, help="API server processes")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--order",
        choices=["random", "sequential"],
        default="random",
        help="which users a request names: drawn at random (as real cohorts are) or consecutive blocks",
    )
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            bench_backend("SQLite", f"sqlite:///{Path(tmp) / 'bench.sqlite'}", args)
    if args.backend in ("postgresql", "both"):
        with _http.postgres_database() as url:
            bench_backend("PostgreSQL", url, args)
    return


if __name__ == "__main__":
    _http.main_server(sys.argv)
    main()
