"""`cohorthub serve`: migrate the schema and serve HTTP (one process, or N on PostgreSQL).

With `--workers N` the schema is migrated once, then uvicorn runs N API processes, each wired
by `app_from_env` from the environment; Currents is delivered from the supervising process.
Caches (cohort bitmaps, segment indexes) catch up from the database, so every process answers
exactly. SQLite allows one writing process: `--workers` over 1 is refused there.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from typing import Annotated

import typer
import uvicorn
from starlette.applications import Starlette

from cohorthub.api.app import create_app
from cohorthub.bootstrap import Container, bootstrap
from cohorthub.cli.common import DatabaseOption
from cohorthub.cli.currents import start_worker
from cohorthub.config import Settings
from cohorthub.segments.warmup import start_warmup
from cohorthub.store.db import is_sqlite

SQLITE_WORKERS = (
    "SQLite allows one writing process: --workers over 1 needs PostgreSQL "
    "(--database postgresql://… or COHORTHUB_DATABASE_URL)."
)


def _warm(container: Container) -> threading.Event:
    """Load segment indexes in the background (docs/segments.md)."""
    return start_warmup(
        uow=lambda: container.uow(readonly=True),
        indexes=container.segments,
        membership=container.membership,
        now=container.now,
    )


def app_from_env() -> Starlette:
    """One API process of `serve --workers N`: wired from COHORTHUB_* variables, schema already migrated."""
    container = bootstrap(Settings.from_env(), run_migrations=False)
    _warm(container)
    return create_app(container)


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    database: DatabaseOption = None,
    public_url: Annotated[
        str | None,
        typer.Option("--public-url", help="URL partners use to reach this server (REST endpoint)."),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run a Currents delivery worker in this process.")
    ] = True,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="API processes (more than 1 needs PostgreSQL).")
    ] = 1,
) -> None:
    """Migrate the schema and serve the API (and deliver Currents unless --no-worker)."""
    settings = Settings.from_env(database_url=database, public_url=public_url)
    if public_url is None and "COHORTHUB_PUBLIC_URL" not in os.environ:
        settings = replace(settings, public_url=f"http://{host}:{port}")
    if workers > 1 and is_sqlite(settings.database_url):
        typer.echo(SQLITE_WORKERS, err=True)
        raise typer.Exit(2)
    container = bootstrap(settings)
    stop = start_worker(container)[0] if worker else None
    warmup = _warm(container) if workers == 1 else None
    try:
        if workers == 1:
            app = create_app(container)
            uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
        else:
            os.environ["COHORTHUB_DATABASE_URL"] = settings.database_url
            os.environ["COHORTHUB_PUBLIC_URL"] = settings.public_url
            uvicorn.run(
                "cohorthub.cli.serve:app_from_env",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_level=log_level,
                access_log=False,
            )
    finally:
        if warmup is not None:
            warmup.set()
        if stop is not None:
            stop.set()
        container.close()
