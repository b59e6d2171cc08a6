"""Benchmark: CPU per request of the PostgreSQL write paths, in the API process and in PostgreSQL.

    .venv/bin/python bench/pg_cpu.py                                  # this tree
    .venv/bin/python bench/pg_cpu.py --baseline /tmp/old/src          # and another tree, alternating

Seeds `--users` identified users, then runs, one at a time and in process (no HTTP), cohort
imports of 1,000 random external ids (every one entering) and `/users/track` requests of 75
attribute objects (new users, then the same users updated). For each it prints the wall time, the
CPU time of this process (`time.process_time`) and the CPU time of the database's backends (from
`/proc/<pid>/stat`), per request. CPU time barely depends on how busy the machine is, unlike the
wall time. With `--baseline`, each measurement runs in turn on the given source tree (a
subprocess with `PYTHONPATH` set to it) and on this one, `--pairs` times, and the ratios print.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import _http
from cohort_import import seed

TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(conn: Any) -> float:
    """CPU seconds (user + system) of the current database's backends."""
    pids = conn.exec_driver_sql(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    ).scalars()
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def measure(database_url: str, users: int, requests: int) -> dict[str, list[float]]:
    """Per path: [wall ms, API CPU ms, PostgreSQL CPU ms] per request."""
    from sqlalchemy import create_engine

    from cohorthub.bootstrap import bootstrap
    from cohorthub.cohorts import services as cohorts
    from cohorthub.config import Settings
    from cohorthub.identity import services as identity

    keys = seed(database_url, users)
    c = bootstrap(Settings(database_url=database_url), run_migrations=False)
    probe = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1)).connect()
    workspace_id = probe.exec_driver_sql("SELECT id FROM workspaces").scalar_one()
    rng = random.Random(7)
    partner = {"partner_api_key": keys["partner_api_key"], "client_secret": keys["client_secret"]}

    def run_import(i: int) -> None:
        ids = [f"user-{n}" for n in rng.sample(range(users), 1000)]
        body = {**partner, "cohort_id": f"c{i % 4}", "cohort_changes": [{"user_ids": ids}]}
        with c.uow() as uow:
            cohorts.import_cohort_changes(
                uow=uow, cache=c.membership, partner="heap", body=body, quota=10**9,
                identifier_max_length=512, compaction_threshold=c.settings.compaction_threshold,
                request_id=str(uuid.uuid4()), now=time.time(),
            )  # fmt: skip

    def run_track(i: int, tag: str) -> None:
        attributes = [{"external_id": f"new-{i}-{j}", "plan": tag, "n": j} for j in range(75)]
        with c.uow() as uow:
            identity.track_users(
                uow=uow, workspace_id=workspace_id, body={"attributes": attributes}, now=time.time()
            )

    paths = {
        "import": run_import,
        "track new": lambda i: run_track(i, "free"),
        "track updated": lambda i: run_track(i, "pro"),
    }
    out: dict[str, list[float]] = {}
    try:
        for name, run in paths.items():
            warm = requests // 5
            for i in range(warm):
                run(requests + i)
            wall, cpu, server = time.perf_counter(), time.process_time(), backend_cpu(probe)
            for i in range(requests):
                run(i)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            server = backend_cpu(probe) - server
            out[name] = [1000 * v / requests for v in (wall, cpu, server)]
    finally:
        probe.close()
        c.close()
    return out


def child(users: int, requests: int) -> None:
    """Measure the tree on sys.path in a fresh database; print the figures as JSON."""
    with _http.postgres_database() as url:
        print(json.dumps(measure(url, users, requests)))


def run_tree(src: str | None, args: argparse.Namespace) -> dict[str, list[float]]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, __file__, "--child", "--users", str(args.users), "--requests", str(args.requests)]
    lines = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout.splitlines()
    result: dict[str, list[float]] = json.loads(lines[-1])
    return result


def show(label: str, figures: dict[str, list[float]]) -> None:
    load = os.getloadavg()[0]
    for name, (wall, cpu, server) in figures.items():
        print(
            f"  {label:8} {name:14} wall {wall:6.2f} ms  API CPU {cpu:6.2f} ms  "
            f"PostgreSQL CPU {server:6.2f} ms  (load {load:.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=100, help="measured requests per path")
    parser.add_argument("--baseline", help="another tree's src directory, measured in turn")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.users, args.requests)
        return
    if args.baseline is None:
        show("this", run_tree(None, args))
        return
    for _ in range(args.pairs):
        before, after = run_tree(args.baseline, args), run_tree(None, args)
        show("baseline", before)
        show("this", after)
        for name in after:
            ratios = [a / b if b else float("nan") for a, b in zip(after[name], before[name], strict=True)]
            print(
                f"  ratio    {name:14} wall {ratios[0]:.2f}  API CPU {ratios[1]:.2f}  "
                f"PostgreSQL CPU {ratios[2]:.2f}"
            )


if __name__ == "__main__":
    main()
