"""Shared helpers of the HTTP benchmarks: servers in subprocesses, a parse-only baseline, databases.

A benchmark script imports this module (it sits next to them) and calls `main_server(argv)` first
thing: when the script was started as a server it serves and never returns.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
from sqlalchemy import create_engine, text

PG_ADMIN_URL = os.environ.get("COHORTHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def serve_cohorthub(database_url: str, port: int, workers: int = 1) -> None:
    """Serve cohorthub on `port` (quota high enough for any run) as `cohorthub serve` does by default:
    the API, and in this (the parent) process the Currents delivery worker and the messaging worker."""
    import uvicorn

    from cohorthub.api.app import create_app
    from cohorthub.bootstrap import bootstrap
    from cohorthub.cli.currents import start_worker
    from cohorthub.config import Settings
    from cohorthub.runtimes import freeze_startup_heap, start_messaging

    os.environ["COHORTHUB_DATABASE_URL"] = database_url
    os.environ["COHORTHUB_PARTNER_HOURLY_QUOTA"] = str(10**9)
    c = bootstrap(Settings.from_env(), run_migrations=False)
    start_worker(c)
    start_messaging(c)
    if workers > 1:
        uvicorn.run(
            "cohorthub.cli.serve:app_from_env",
            factory=True,
            host="127.0.0.1",
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
        )
        return
    app = create_app(c)
    freeze_startup_heap()  # as `cohorthub serve` does before serving
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_baseline(port: int) -> None:
    """Serve a bare Starlette app that only reads and parses any POSTed JSON body."""
    import msgspec
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    decoder = msgspec.json.Decoder()

    async def parse(request: Request) -> Response:
        decoder.decode(await request.body())
        return Response(b'{"message":"success"}', status_code=201, media_type="application/json")

    async def health(_request: Request) -> Response:
        return Response(b"{}", media_type="application/json")

    app = Starlette(routes=[Route("/healthz", health), Route("/{path:path}", parse, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main_server(argv: list[str]) -> None:
    """When started as `script --serve URL --port P [--workers N]` or `--serve-baseline`, serve forever."""
    if "--port" not in argv:
        return
    port = int(argv[argv.index("--port") + 1])
    if "--serve-baseline" in argv:
        serve_baseline(port)
    else:
        workers = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 1
        serve_cohorthub(argv[argv.index("--serve") + 1], port, workers)
    sys.exit(0)


@contextmanager
def server(script: str, *args: str) -> Iterator[str]:
    """Run `script` in server mode in a subprocess; yield its base URL once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, script, *args, "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    _pids[url] = proc.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.1)
        yield url
    finally:
        _pids.pop(url, None)
        proc.terminate()
        proc.wait(timeout=30)


_pids: dict[str, int] = {}


def server_cpu_seconds(url: str) -> float:
    """CPU seconds (user + system) the server at `url` has used so far, its worker processes included."""
    import psutil

    process = psutil.Process(_pids[url])
    return sum(sum(p.cpu_times()[:2]) for p in (process, *process.children(recursive=True)))


def run_clients(
    url: str,
    path: str,
    payloads: list[bytes],
    clients: int,
    count: Callable[[dict[str, object]], int],
    headers: dict[str, str] | None = None,
    status: int = 201,
) -> tuple[float, int]:
    """POST every payload to `path` over `clients` connections; return (seconds, sum of `count`)."""
    totals = [0] * clients
    errors: list[str] = []

    def worker(slot: int) -> None:
        h = {"content-type": "application/json", **(headers or {})}
        with httpx.Client(base_url=url, timeout=120, headers=h) as http:
            for payload in payloads[slot::clients]:
                response = http.post(path, content=payload)
                if response.status_code != status:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                    return
                totals[slot] += count(response.json())

    elapsed = in_threads(worker, clients)
    if errors:
        raise RuntimeError(errors[0])
    return elapsed, sum(totals)


def in_threads(worker: Callable[[int], None], count: int) -> float:
    """Run `worker(0)` … `worker(count - 1)` in as many threads at once; the seconds until all end."""
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


@contextmanager
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL database."""
    from cohorthub.store.db import normalize_url

    admin_url = normalize_url(PG_ADMIN_URL)
    name = f"cohorthub_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh database URL on `backend` ("sqlite" or "postgresql"), removed afterwards."""
    if backend == "postgresql":
        with postgres_database() as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/bench.sqlite"
