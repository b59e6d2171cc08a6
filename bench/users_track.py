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
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

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
    target = TARGETS[backend]
    print(f"{backend} ({args.clients} clients, {args.workers} process(es), {args.batch}/request):")
    requests = len(new)
    base_ms = base_cpu / requests * 1e3
    print(f"  baseline (parse only):  {base:10,.0f} objects/s   server CPU {base_ms:.2f} ms/request")
    for i, (name, n, s) in enumerate((("new users", created, new_s), ("updates", updated, upd_s))):
        rate = n / s
        print(
            f"  {name:10} {rate:10,.0f} attribute objects/s ({n:,} in {s:.1f} s)   "
            f"ratio to baseline {rate / base:.3f}   to target {target:,}: {rate / target:.2f}   "
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
