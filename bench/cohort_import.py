"""Benchmark: partner cohort import over real HTTP, against a bare parse-only ASGI app.

    .venv/bin/python bench/cohort_import.py                      # 1M users, SQLite and PostgreSQL
    .venv/bin/python bench/cohort_import.py --users 20000 --requests 20 --backend sqlite   # smoke run

Seeds N identified users with executemany (not over HTTP), then sends user cohort requests of
1,000 `user_ids` each (every one a new member, so each request makes 1,000 identifier changes)
to cohorthub served by uvicorn (one worker, in a subprocess), and the same bodies to a bare
Starlette app that only parses them. Prints identifier changes per second and the ratio.
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
    print(f"  baseline (parse only): {base_rate:12,.0f} identifiers/s ({len(measured)} req, {base_s:.2f} s)")
    print(f"  cohorthub:             {rate:12,.0f} identifier changes/s ({changes:,} in {elapsed:.2f} s)")
    target = TARGETS[name]
    print(f"  ratio cohorthub/baseline: {rate / base_rate:.3f}   to target {target:,}/s: {rate / target:.2f}")


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
