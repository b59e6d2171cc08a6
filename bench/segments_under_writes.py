"""Benchmark: exact segment sizes while a partner imports and the app tracks users (over HTTP).

    .venv/bin/python bench/segments_under_writes.py                               # 60 s, both stores
    .venv/bin/python bench/segments_under_writes.py --seconds 20 --users 200000 --backend sqlite

Seeds N users, starts cohorthub (one process), creates the segment `cohort A AND NOT cohort B AND
plan = "pro"`, then measures `GET /segments/{id}/size` on the quiet server (the baseline), and again
while `--importers` clients post 1,000-identifier cohort changes into both cohorts and `--trackers`
clients post 75-object /users/track requests (setting `plan`) for `--seconds`. Prints the size
latency p50/p99 quiet and under writes, their ratio, the 20 ms p99 target, and the write rates.
After each size read the reader also times `GET /healthz`, which does no work: its latency under
the same writes is the floor set by waiting for the server's event loop and a CPU, which no read
path can go below on that machine.

Each writer runs in a process of its own, as the partner and the app are other clients: in the
reader's process their request building would hold the interpreter lock the reader's timing needs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

import _http
from cohort_import import seed

SEGMENT = {
    "name": "bench",
    "filter": {
        "and": [
            {"type": "cohort", "partner": "heap", "cohort_id": "a", "op": "includes"},
            {"not": {"type": "cohort", "partner": "heap", "cohort_id": "b", "op": "includes"}},
            {
                "type": "custom_attribute",
                "attribute": "plan",
                "data_type": "string",
                "op": "equals",
                "value": "pro",
            },
        ]
    },
}


def sizes(
    http: httpx.Client, sid: str, stop: threading.Event, out: list[float], floor: list[float], limit: int = 0
) -> None:
    """GET the size until `stop` (or `limit` times); append each latency in ms to `out`, and the
    latency of a `/healthz` after each to `floor` (a request that does no work: what waiting for the
    server's event loop and a CPU alone costs at that moment)."""
    while not stop.is_set() and (not limit or len(out) < limit):
        for path, into in ((f"/segments/{sid}/size", out), ("/healthz", floor)):
            started = time.perf_counter()
            response = http.get(path)
            into.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
            if not limit:
                time.sleep(0.025)


def importer(
    url: str, keys: dict[str, str], users: int, seed_: int, stop: threading.Event, n: list[int]
) -> None:
    """Post random 1,000-identifier changes into cohorts a and b (add, then remove), until `stop`."""
    rng = random.Random(seed_)
    partner = {"partner_api_key": keys["partner_api_key"], "client_secret": keys["client_secret"]}
    with httpx.Client(base_url=url, timeout=120) as http:
        while not stop.is_set():
            ids = [f"user-{rng.randrange(users)}" for _ in range(1000)]
            change = {"user_ids": ids, "should_remove": rng.random() < 0.3}
            body = {**partner, "cohort_id": rng.choice("ab"), "cohort_changes": [change]}
            response = http.post("/partners/heap/cohorts/users", json=body)
            assert response.status_code == 201, response.text
            n[0] += 1


def tracker(url: str, key: str, users: int, seed_: int, stop: threading.Event, n: list[int]) -> None:
    """Post 75 attribute objects (random users, plan pro or free) per request, until `stop`."""
    rng = random.Random(seed_)
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
        while not stop.is_set():
            attributes = [
                {"external_id": f"user-{rng.randrange(users)}", "plan": rng.choice(["pro", "free"])}
                for _ in range(75)
            ]
            response = http.post("/users/track", content=json.dumps({"attributes": attributes}),
                                 headers={"content-type": "application/json"})  # fmt: skip
            assert response.status_code == 201, response.text
            n[0] += 1


def writer(kind: str, args: tuple[object, ...], stop: Any, count: Any) -> None:
    """Run one importer or tracker client (in its own process) until `stop`; store its request count."""
    n = [0]
    if kind == "importer":
        importer(*args, stop, n)  # type: ignore[arg-type]
    else:
        tracker(*args, stop, n)  # type: ignore[arg-type]
    count.value = n[0]


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench(name: str, database_url: str, args: argparse.Namespace) -> None:
    """Seed, serve, measure quiet then under writes."""
    print(f"{name}:")
    keys = seed(database_url, args.users)
    with _http.server(__file__, "--serve", database_url) as url:
        http = httpx.Client(
            base_url=url, timeout=120, headers={"authorization": f"Bearer {keys['rest_api_key']}"}
        )
        partner = {"partner_api_key": keys["partner_api_key"], "client_secret": keys["client_secret"]}
        for cohort in "ab":
            body = {**partner, "cohort_id": cohort, "name": cohort, "created_at": "2024-01-01T00:00:00Z"}
            assert http.post("/partners/heap/cohorts", json=body).status_code == 201
        created = http.post("/segments", json=SEGMENT)
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        quiet: list[float] = []
        quiet_floor: list[float] = []
        sizes(http, sid, threading.Event(), quiet, quiet_floor, limit=5)  # warm
        quiet.clear()
        quiet_floor.clear()
        sizes(http, sid, threading.Event(), quiet, quiet_floor, limit=100)
        mp = multiprocessing.get_context("fork")
        stop = mp.Event()
        loaded: list[float] = []
        floor: list[float] = []
        jobs = [("importer", (url, keys, args.users, i), mp.Value("q", 0)) for i in range(args.importers)]
        jobs += [
            ("tracker", (url, keys["rest_api_key"], args.users, 100 + i), mp.Value("q", 0))
            for i in range(args.trackers)
        ]
        procs = [mp.Process(target=writer, args=(kind, a, stop, n)) for kind, a, n in jobs]
        for p in procs:
            p.start()
        reader = threading.Thread(target=sizes, args=(http, sid, stop, loaded, floor))
        reader.start()
        time.sleep(args.seconds)
        stop.set()
        reader.join()
        for p in procs:
            p.join()
        http.close()
        imports = [sum(n.value for kind, _, n in jobs if kind == "importer")]
        tracks = [sum(n.value for kind, _, n in jobs if kind == "tracker")]
    q50, q99 = statistics.median(quiet), pct(quiet, 0.99)
    l50, l99 = statistics.median(loaded), pct(loaded, 0.99)
    f50, f99 = statistics.median(floor), pct(floor, 0.99)
    print(f"  size quiet:         p50 {q50:7.1f} ms  p99 {q99:7.1f} ms  ({len(quiet)} reads)")
    print(
        f"  /healthz quiet:     p50 {statistics.median(quiet_floor):7.1f} ms  "
        f"p99 {pct(quiet_floor, 0.99):7.1f} ms"
    )
    print(f"  size under writes:  p50 {l50:7.1f} ms  p99 {l99:7.1f} ms  ({len(loaded)} reads)")
    print(f"  /healthz under writes (floor): p50 {f50:7.1f} ms  p99 {f99:7.1f} ms  ({len(floor)} requests)")
    print(
        f"  ratio under writes/quiet: p50 {l50 / q50:.1f}x  p99 {l99 / q99:.1f}x   "
        f"p99 to target 20 ms: {l99 / 20:.2f}   size p99 / floor p99: {l99 / f99:.2f}"
    )
    print(
        f"  writes: {imports[0] / args.seconds:.1f} imports/s "
        f"({imports[0] * 1000 / args.seconds:,.0f} ids/s), "
        f"{tracks[0] / args.seconds:.1f} tracks/s ({tracks[0] * 75 / args.seconds:,.0f} objects/s)"
    )


def main() -> None:
    """Parse arguments and run each backend."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--importers", type=int, default=2)
    parser.add_argument("--trackers", type=int, default=2)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args, _ = parser.parse_known_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            bench("SQLite", f"sqlite:///{Path(tmp) / 'bench.sqlite'}", args)
    if args.backend in ("postgresql", "both"):
        with _http.postgres_database() as url:
            bench("PostgreSQL", url, args)


if __name__ == "__main__":
    _http.main_server(sys.argv)
    main()
