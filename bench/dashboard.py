"""Server time of every dashboard page on a 1M-user workspace.

Fixture: the one of `bench/segments.py` (``--users`` users, two cohorts of half the users each,
30 % with country ES, the segment `(A AND NOT B) AND country = ES`), plus a signed-in admin and Heap
enabled. A real server (uvicorn on loopback, in this process) answers; each page's server time is
read from its `Server-Timing` header. The baseline, measured in the same run, is the JSON API's
`GET /segments/{id}/size` (the same exact evaluation without a page around it).

    python bench/dashboard.py                    # 1M users on SQLite
    python bench/dashboard.py --users 100000 --backend postgresql
    python bench/dashboard.py --pages canvas,users     # only the pages whose path holds one of these

The send ledger holds one message for each of the first 100,000 users and 200 for `u5` (whose Users
page lists its latest ten; its messages page the latest fifty); a five-step Canvas enters the segment.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO / "src"), str(REPO)]
from tests.conftest import LiveServer  # noqa: E402

import segments as fixture  # noqa: E402 (bench/segments.py builds the same workspace)
from cohorthub.accounts import services as accounts  # noqa: E402
from cohorthub.accounts.passwords import Argon2Hasher  # noqa: E402
from cohorthub.bootstrap import bootstrap  # noqa: E402
from cohorthub.config import Settings  # noqa: E402
from cohorthub.messaging import services as messaging  # noqa: E402
from cohorthub.messaging.ports import SendKey  # noqa: E402
from cohorthub.partners.services import enable_partner  # noqa: E402
from cohorthub.store.tables import users as users_table  # noqa: E402

PASSWORD = "bench password 1"
RUNS = 15


def _server_ms(response: httpx.Response) -> float:
    match = re.search(r"dur=([0-9.]+)", response.headers.get("server-timing", ""))
    if match is None:
        raise RuntimeError(f"no Server-Timing on {response.request.url}: {response.status_code}")
    return float(match[1])


def _sign_in(http: httpx.Client) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/dashboard/signin").text)
    assert token is not None
    http.post(
        "/dashboard/signin", data={"email": "bench@acme.io", "password": PASSWORD, "csrf_token": token[1]}
    )
    csrf = re.search(r'data-csrf="([^"]+)"', http.get("/dashboard/partners").text)
    assert csrf is not None
    return csrf[1]


MAIL = {"from": "news@acme.io", "subject": "Hi {{${user_id}}}", "body": "<p>Hi</p>"}
CANVAS_STEPS = [
    {"id": "hello", "type": "message", "channel": "email", "email": MAIL, "next": "wait"},
    {"id": "wait", "type": "delay", "seconds": 86400, "next": "split"},
    {"id": "split", "type": "decision_split", "event": "purchase", "within_seconds": 86400, "yes": None,
     "no": "nudge"},
    {"id": "nudge", "type": "message", "channel": "email", "email": MAIL, "next": "last"},
    {"id": "last", "type": "delay", "seconds": 3600},
]  # fmt: skip


def _ledger(c: object, workspace_id: str, program_id: str) -> str:
    """Fill the send ledger; return u5's braze id."""
    with c.uow() as uow:  # type: ignore[attr-defined]
        conn, ledger = uow.conn, uow.messaging.ledger
        nums = list(conn.execute(users_table.select().with_only_columns(users_table.c.num).limit(100_000))
                    .scalars())  # fmt: skip
        for start in range(0, len(nums), 5000):
            rows = [(SendKey(program_id, "", n, "bulk"), None, "email", "x@example.com")
                    for n in nums[start : start + 5000]]  # fmt: skip
            ledger.reserve(workspace_id, rows, now=c.now() - 3600)  # type: ignore[attr-defined]
        u5 = uow.messaging.facts.nums_by_external_ids(workspace_id, ["u5"])["u5"]
        for i in range(200):
            ledger.reserve(workspace_id, [(SendKey(program_id, "", u5, f"d{i}"), None, "email", "u5@x.io")],
                           now=c.now() - i)  # type: ignore[attr-defined]  # fmt: skip
        braze_id = conn.execute(users_table.select().with_only_columns(users_table.c.braze_id)
                                .where(users_table.c.num == u5)).scalar_one()  # fmt: skip
        uow.commit()
    return str(braze_id)


def run(backend: str, users: int, only: list[str]) -> None:
    """Build the fixture, serve it, and print each page's server time."""
    with tempfile.TemporaryDirectory() as tmp:
        url = fixture._database(backend, Path(tmp))
        try:
            started = time.perf_counter()
            segment_id, key, _, _ = fixture._fixture(url, users)
            print(f"[{backend}] fixture of {users:,} users built in {time.perf_counter() - started:.1f} s")
            _measure(url, segment_id, key, only)
        finally:
            fixture._drop(url)


def _measure(url: str, segment_id: str, key: str, only: list[str]) -> None:
    c = bootstrap(Settings(database_url=url), run_migrations=False)
    with c.uow() as uow:
        accounts.create_account(uow=uow, hasher=Argon2Hasher(), email="bench@acme.io", password=PASSWORD,
                                role="admin", now=c.now())  # fmt: skip
    with c.uow() as uow:
        workspace_id = uow.workspaces.all()[0].id
        enable_partner(uow=uow, workspace_id=workspace_id, partner="heap", now=c.now())
    with c.uow() as uow:
        campaign = messaging.create_program(uow=uow, workspace_id=workspace_id, kind="campaign", raw={
            "name": "bench", "channel": "email", "audience": {"segment_ids": [segment_id]},
            "email": MAIL,
        }, now=c.now())  # fmt: skip
        canvas = messaging.create_program(uow=uow, workspace_id=workspace_id, kind="canvas", raw={
            "name": "bench", "entry": {"type": "segment", "segment_id": segment_id}, "steps": CANVAS_STEPS,
        }, now=c.now())  # fmt: skip
    started = time.perf_counter()
    braze_id = _ledger(c, workspace_id, campaign.id)
    print(f"send ledger of 100,200 messages written in {time.perf_counter() - started:.1f} s")
    pages = [
        "/dashboard/partners", "/dashboard/partners/heap", "/dashboard/segments",
        "/dashboard/segments/new", f"/dashboard/segments/{segment_id}",
        f"/dashboard/segments/{segment_id}/members?q=u5",
        f"/dashboard/segments/{segment_id}/explain?external_id=u5",
        "/dashboard/users?by=external_id&q=u5", "/dashboard/currents", "/dashboard/settings",
        "/dashboard/campaigns", f"/dashboard/campaigns/{campaign.id}",
        f"/dashboard/campaigns/{campaign.id}/preview?external_id=u5", "/dashboard/campaigns/new",
        f"/dashboard/campaigns/{canvas.id}", "/dashboard/canvases/new",
        f"/dashboard/users/{braze_id}/messages",
    ]  # fmt: skip
    pages = [p for p in pages if not only or any(o in p for o in only)]
    with LiveServer(c) as server, httpx.Client(base_url=server.url, timeout=600) as http:
        api = {"Authorization": f"Bearer {key}"}
        start = time.perf_counter()
        http.get(f"/segments/{segment_id}/size", headers=api).raise_for_status()
        print(
            f"first evaluation after start (cold bitmaps, API): {(time.perf_counter() - start) * 1000:.0f} ms"
        )
        baseline = statistics.median(
            _timed(lambda: http.get(f"/segments/{segment_id}/size", headers=api)) for _ in range(RUNS)
        )
        csrf = _sign_in(http)
        preview = {
            "filter": {"and": [{"type": "cohort", "partner": "heap", "cohort_id": "A", "op": "includes"}]}
        }
        figures = []
        for path in pages:
            first = _server_ms(http.get(path))
            figures.append((path, first, statistics.median(_server_ms(http.get(path)) for _ in range(RUNS))))
        post = {"X-CSRF-Token": csrf, "Accept": "application/json"}
        first = median = 0.0
        if not only:
            first = _server_ms(http.post("/dashboard/segments/preview", json=preview, headers=post))
            median = statistics.median(
                _server_ms(http.post("/dashboard/segments/preview", json=preview, headers=post))
                for _ in range(RUNS)
            )
        if not only:
            figures.append(("POST /dashboard/segments/preview", first, median))
    c.close()
    print(f"baseline: GET /segments/{{id}}/size (JSON API), median wall time {baseline:.1f} ms")
    print(f"{'page':<72} {'first ms':>9} {'median ms':>10} {'× baseline':>11}")
    for path, first, median in figures:
        print(f"{path:<72} {first:>9.1f} {median:>10.1f} {median / baseline:>11.1f}")
    slowest = max(figures, key=lambda f: f[2])
    print(f"slowest page (median server time): {slowest[0]} {slowest[2]:.1f} ms")


def _timed(fn: object) -> float:
    start = time.perf_counter()
    response = fn()  # type: ignore[operator]
    response.raise_for_status()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pages", default="", help="comma-separated parts of the paths to measure (all)")
    args = parser.parse_args()
    run(args.backend, args.users, [p for p in args.pages.split(",") if p])


if __name__ == "__main__":
    main()
