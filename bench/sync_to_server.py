"""First sync of a cohort into a real cohorthub server, end to end.

Seeds `--members` identified users into a fresh SQLite database, starts `cohorthub serve`
(one uvicorn worker, no Currents worker) in a child process, and times `CohortSyncClient.sync`
of all of them as a new cohort: every identifier is matched and enters the cohort, durably.
The baseline, measured in the same run, is the same client against the protocol-faithful test
partner server, which stores nothing: it is what the client alone can send. A ratio near 1 means
the client is the limit; well below 1, the server is.

    python bench/sync_to_server.py                   # 1M members
    python bench/sync_to_server.py --members 50000   # smoke
"""

from __future__ import annotations

import argparse
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from bench.cohort_import import seed  # noqa: E402
from bench.sync import first_sync, write_ids  # noqa: E402

from cohorthub.partner_client import Cohort, CohortSyncClient, DelimitedSource  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    exe = str(Path(sys.executable).with_name("cohorthub"))
    args = [
        exe,
        "serve",
        "--port",
        str(port),
        "--database",
        database_url,
        "--no-worker",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(args)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def sync_into(url: str, keys: dict[str, str], members: int, workdir: Path) -> dict[str, float]:
    source = workdir / "members.csv"
    write_ids(source, 0, members)
    with CohortSyncClient(
        url,
        partner="heap",
        partner_api_key=keys["partner_api_key"],
        data_import_key=keys["client_secret"],
        state=workdir / "state",
    ) as client:
        result = client.sync(Cohort("bench-first-sync", "Bench"), DelimitedSource(source))
    return {"identifiers": result.adds, "requests": result.requests, "seconds": result.duration_s}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        database_url = f"sqlite:///{workdir / 'cohorthub.sqlite'}"
        keys = seed(database_url, args.members, external_id="user-{:09d}")
        proc, url = serve(database_url)
        try:
            ours = sync_into(url, keys, args.members, workdir)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        with sqlite3.connect(workdir / "cohorthub.sqlite") as db:
            (size,) = db.execute("SELECT size FROM cohorts WHERE cohort_id = 'bench-first-sync'").fetchone()
        assert size == args.members, f"cohort holds {size} of {args.members} members"
    base = first_sync(args.members, None, "heap", ("PK", "DIK"))
    ours_rate = ours["identifiers"] / ours["seconds"]
    base_rate = base["identifiers"] / base["seconds"]
    print(
        f"first sync into cohorthub (SQLite): {ours['identifiers']:,.0f} identifiers in "
        f"{ours['seconds']:.1f} s = {ours_rate:,.0f} identifiers/s ({ours['requests']:,.0f} requests)"
    )
    print(f"baseline, same client into the storeless test server: {base_rate:,.0f} identifiers/s")
    print(f"ratio cohorthub/baseline: {ours_rate / base_rate:.2f} (cohort size checked: {args.members:,})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
