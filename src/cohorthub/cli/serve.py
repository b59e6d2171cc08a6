"""`cohorthub serve`: migrate the schema and serve HTTP."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Annotated

import typer
import uvicorn

from cohorthub.api.app import create_app
from cohorthub.bootstrap import bootstrap
from cohorthub.cli.common import DatabaseOption
from cohorthub.cli.currents import start_worker
from cohorthub.config import Settings
from cohorthub.runtimes import start_messaging
from cohorthub.segments.warmup import start_warmup


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
    messaging: Annotated[
        bool,
        typer.Option("--messaging/--no-messaging", help="Send campaigns and run Canvases in this process."),
    ] = True,
) -> None:
    """Migrate the schema and serve the API (and deliver Currents unless --no-worker)."""
    settings = Settings.from_env(database_url=database, public_url=public_url)
    if public_url is None and "COHORTHUB_PUBLIC_URL" not in os.environ:
        settings = replace(settings, public_url=f"http://{host}:{port}")
    container = bootstrap(settings)
    stop = start_worker(container)[0] if worker else None
    stop_messaging = start_messaging(container)[0] if messaging else None
    warmup = start_warmup(  # segment indexes load in the background (docs/segments.md)
        uow=lambda: container.uow(readonly=True),
        indexes=container.segments,
        membership=container.membership,
        now=container.now,
    )
    try:
        uvicorn.run(create_app(container), host=host, port=port, log_level=log_level, access_log=False)
    finally:
        warmup.set()
        if stop is not None:
            stop.set()
        if stop_messaging is not None:
            stop_messaging.set()
        container.close()
