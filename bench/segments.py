"""Benchmark of segment evaluation: `(cohort A AND NOT cohort B) AND country = "ES"`.

Fixture (bulk inserts): ``--users`` users, two cohorts of half the users each (random, seeded),
30 % of users with country ES. For each backend it prints, from the same run:

1. the engine: the first evaluation in a fresh process (cold start: the universe, the country leaf
   and both cohorts read from the database), then the median exact count once warm (catch-up
   queries included);
2. the same count as one SQL query (cohort members in plain indexed tables), and both ratios;
3. through HTTP (a server in a child process): the first `GET /segments/{id}/size` after the server
   started, the median size and first page of 1,000 members; the server's resident memory.

    python bench/segments.py                       # full size: 10M users, SQLite and PostgreSQL
    python bench/segments.py --users 200000        # smoke run
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

import httpx  # noqa: E402
import psutil  # noqa: E402
from pyroaring import BitMap  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from cohorthub.bootstrap import bootstrap  # noqa: E402
from cohorthub.cohorts.membership import chunk_images  # noqa: E402
from cohorthub.config import Settings  # noqa: E402
from cohorthub.segments import services  # noqa: E402
from cohorthub.store.db import normalize_url  # noqa: E402
from cohorthub.workspaces import services as workspaces  # noqa: E402

PG_ADMIN = os.environ.get("COHORTHUB_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NOW = time.time()
DAY_AGO = NOW - 86400  # users were written over time before: the bench measures steady state
BATCH = 200_000
TRIAL = {"type": "cohort", "partner": "heap", "cohort_id": "A", "op": "includes"}
FILTER = {
    "and": [
        {"and": [TRIAL, {"not": {**TRIAL, "cohort_id": "B"}}]},
        {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"},
    ]
}
SQL = """SELECT count(*) FROM users u WHERE u.workspace_id = :ws AND u.country = 'ES'
 AND EXISTS (SELECT 1 FROM bench_a a WHERE a.num = u.num)
 AND NOT EXISTS (SELECT 1 FROM bench_b b WHERE b.num = u.num)"""


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _median(fn: Any, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _database(backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'bench.sqlite'}"
    name = f"cohorthub_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(PG_ADMIN), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _drop(url: str) -> None:
    if url.startswith("postgresql"):
        admin = create_engine(normalize_url(PG_ADMIN), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()


def _fixture(url: str, users: int) -> tuple[str, str, BitMap, BitMap]:
    c = bootstrap(Settings(database_url=url))
    with c.uow() as uow:
        ws, key = workspaces.create_workspace(uow=uow, name="bench", now=NOW)
    rng = random.Random(7)
    a, b = (
        BitMap(rng.sample(range(1, users + 1), users // 2)),
        BitMap(rng.sample(range(1, users + 1), users // 2)),
    )
    raw = c.engine.raw_connection()
    cur = raw.cursor()
    rows_sql = (
        "INSERT INTO users (num, workspace_id, braze_id, external_id, country, custom_attributes, created_at,"
        " updated_at) VALUES ({p})"
    )
    is_pg = url.startswith("postgresql")
    if not is_pg:
        cur.execute("BEGIN")
    for start in range(1, users + 1, BATCH):
        rows = [
            (
                n,
                ws.id,
                f"{n:024x}",
                f"u{n}",
                "ES" if rng.random() < 0.3 else "FR",
                "{}",
                DAY_AGO - users + n,
                DAY_AGO - users + n,
            )
            for n in range(start, min(start + BATCH, users + 1))
        ]
        if is_pg:
            with cur.copy(
                "COPY users (num, workspace_id, braze_id, external_id, country, custom_attributes,"
                " created_at, updated_at) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cur.executemany(rows_sql.format(p=",".join("?" * 8)), rows)
    for name, members in (("bench_a", a), ("bench_b", b)):
        cur.execute(f"CREATE TABLE {name} (num BIGINT PRIMARY KEY)")
        ph = "%s" if is_pg else "?"
        cur.executemany(f"INSERT INTO {name} VALUES ({ph})", [(n,) for n in members])
    raw.commit()
    if is_pg:
        cur.execute("SELECT setval(pg_get_serial_sequence('users', 'num'), %s)", (users,))
        cur.execute("ANALYZE")
        raw.commit()
    raw.close()
    with c.engine.begin() as conn:
        for cohort_id, members in (("A", a), ("B", b)):
            pk = conn.execute(
                text(
                    "INSERT INTO cohorts (workspace_id, partner, cohort_id, name, named, created_at,"
                    " updated_at, version, size, snapshot_version, import_requests, identifiers_matched,"
                    " identifiers_unmatched, unmatched_sample) VALUES (:ws, 'heap', :cid, :cid, true, :now,"
                    " :now, 1, :size, 1, 1, :size, 0, '[]') RETURNING pk"
                ),
                {"ws": ws.id, "cid": cohort_id, "now": NOW, "size": len(members)},
            ).scalar_one()
            chunks = {n >> 16 for n in (members.min(), members.max())}
            images = chunk_images(members, range(min(chunks), max(chunks) + 1))
            conn.execute(
                text("INSERT INTO cohort_chunks (cohort_pk, chunk_no, bitmap) VALUES (:pk, :no, :img)"),
                [{"pk": pk, "no": no, "img": img} for no, img in images.items() if img],
            )
    with c.uow() as uow:
        draft = services.SegmentDraft(name="A and not B in ES", filter=FILTER)
        segment = services.create_segment(uow=uow, workspace_id=ws.id, draft=draft, now=NOW)
    c.close()
    return segment.id, key.key, a, b


def _engine(url: str, segment_id: str, ws: str) -> tuple[int, float, float]:
    c = bootstrap(Settings(database_url=url), run_migrations=False)

    def count() -> int:
        with c.uow(readonly=True) as uow:
            _, members = services.evaluate_segment(
                uow=uow, indexes=c.segments, membership=c.membership, workspace_id=ws,
                segment_id=segment_id, now=time.time(),
            )  # fmt: skip
            return len(members)

    start = time.perf_counter()
    size = count()
    cold = time.perf_counter() - start
    median = _median(count, 50)
    c.close()
    return size, cold, median


def _sql(url: str, ws: str) -> tuple[int, float]:
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        size = int(conn.execute(text(SQL), {"ws": ws}).scalar_one())
        median = _median(lambda: conn.execute(text(SQL), {"ws": ws}).scalar_one(), 3)
    engine.dispose()
    return size, median


SERVER = """
import sys, uvicorn
from cohorthub.api.app import create_app
from cohorthub.bootstrap import bootstrap
from cohorthub.config import Settings
c = bootstrap(Settings(database_url=sys.argv[1]), run_migrations=False)
uvicorn.run(create_app(c), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def _http(url: str, segment_id: str, key: str) -> tuple[int, float, float, float, float]:
    from tests.conftest import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}"}
    proc = subprocess.Popen([sys.executable, "-c", SERVER, url, str(port)], env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600) as http:
            for _ in range(300):
                try:
                    http.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            start = time.perf_counter()
            size = http.get(f"/segments/{segment_id}/size").json()["size"]
            cold = time.perf_counter() - start
            size_ms = _median(lambda: http.get(f"/segments/{segment_id}/size").raise_for_status(), 50)
            page = _median(
                lambda: http.get(
                    f"/segments/{segment_id}/members", params={"limit": 1000}
                ).raise_for_status(),
                20,
            )
            rss = psutil.Process(proc.pid).memory_info().rss / 2**20
        return size, cold, size_ms, page, rss
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(backend: str, users: int) -> None:
    """Build the fixture on one backend and print every figure."""
    with tempfile.TemporaryDirectory() as tmp:
        url = _database(backend, Path(tmp))
        try:
            start = time.perf_counter()
            segment_id, key, _, _ = _fixture(url, users)
            print(f"[{backend}] fixture: {users:,} users in {time.perf_counter() - start:.1f} s")
            c = bootstrap(Settings(database_url=url), run_migrations=False)
            with c.uow(readonly=True) as uow:
                ws = uow.conn.execute(text("SELECT workspace_id FROM segments")).scalar_one()
            c.close()
            size, cold, engine_s = _engine(url, segment_id, ws)
            print(
                f"[{backend}] engine: size {size:,}; first evaluation (cold start) {cold:.2f} s;"
                f" exact count median once warm {_ms(engine_s)}"
            )
            sql_size, sql_s = _sql(url, ws)
            assert sql_size == size, (sql_size, size)
            print(
                f"[{backend}] SQL: same count {_ms(sql_s)}; warm engine {sql_s / engine_s:,.0f}x faster;"
                f" cold start = {cold / sql_s:.1f}x the SQL count"
            )
            http_size, http_cold, size_s, page_s, rss = _http(url, segment_id, key)
            assert http_size == size
            print(
                f"[{backend}] HTTP: first size request after start {http_cold:.2f} s; size median"
                f" {_ms(size_s)}; first page of 1,000 members median {_ms(page_s)}; server RSS {rss:.0f} MB"
            )
        finally:
            _drop(url)


def main() -> None:
    """Parse options and run each backend."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        run(backend, args.users)


if __name__ == "__main__":
    main()
