"""`cohorthub serve`: migrate, record the address, serve HTTP. `cohorthub init`: create a database.

With `--workers N` (PostgreSQL only) the schema is migrated once, then N API processes share the
listening socket, each wired by `app_from_env` from the environment; Currents and messaging run in
the supervising process. Caches (cohort bitmaps, segment indexes) catch up from the database, so
every process answers exactly. SQLite allows one writing process: `--workers` over 1 is refused.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from starlette.applications import Starlette
from uvicorn.config import LOGGING_CONFIG
from uvicorn.supervisors import Multiprocess

from cohorthub.api.app import create_app
from cohorthub.bootstrap import Container, bootstrap
from cohorthub.cli.common import DatabaseOption, JsonOption, emit, fail, wired
from cohorthub.cli.currents import start_worker
from cohorthub.config import Settings, configured_public_url
from cohorthub.errors import CohorthubError
from cohorthub.partners.overview import record_server_addresses
from cohorthub.runtimes import freeze_startup_heap, start_messaging
from cohorthub.segments.warmup import start_warmup
from cohorthub.store.db import describe_url, is_sqlite

SQLITE_WORKERS = (
    "SQLite allows one writing process: --workers over 1 needs PostgreSQL "
    "(--database postgresql://… or COHORTHUB_DATABASE_URL)."
)
#: How `serve --workers N` tells its API processes whether to log requests.
REQUEST_LOG_ENV = "COHORTHUB_REQUEST_LOG"


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
    request_log = os.environ.get(REQUEST_LOG_ENV, "1") == "1"
    container = bootstrap(Settings.from_env(request_log=request_log), run_migrations=False)
    _warm(container)
    app = create_app(container)
    freeze_startup_heap()
    return app


def listen_url(host: str, port: int) -> str:
    """The URL of a listening socket: a wildcard address is named by this machine's host name."""
    if host in {"", "0.0.0.0", "::"}:  # the wildcard names no reachable host
        host = socket.getfqdn()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def log_config(*, level: str) -> dict[str, Any]:
    """uvicorn's logging, plus the `cohorthub` loggers (the request log among them) with timestamps."""
    config: dict[str, Any] = {**LOGGING_CONFIG, "loggers": dict(LOGGING_CONFIG["loggers"])}
    config["formatters"] = {
        **LOGGING_CONFIG["formatters"],
        "cohorthub": {
            "()": "uvicorn.logging.DefaultFormatter",
            "fmt": "%(asctime)s %(levelprefix)s %(message)s",
            "use_colors": None,
        },
    }
    config["handlers"] = {
        **LOGGING_CONFIG["handlers"],
        "cohorthub": {"formatter": "cohorthub", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
    }
    config["loggers"]["cohorthub"] = {"handlers": ["cohorthub"], "level": level.upper(), "propagate": False}
    return config


def banner(*, url: str, public_url: str | None, database: str) -> str:
    """What `serve` prints at start: where it is, which database, what to run next."""
    venv_bin = Path(sys.executable).parent
    lines = [
        f"cohorthub is serving on {url}",
        f"  database:      {database}",
        f"  REST endpoint: {public_url or url}  (shown to partners; set it with --public-url)",
        "  next, in another terminal:",
        f'    export PATH="{venv_bin}:$PATH"',
        f'    export COHORTHUB_DATABASE_URL="{database}"',
        '    cohorthub workspace create "Acme"      (README.md: the five-minute walkthrough)',
    ]
    return "\n".join(lines)


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="API processes (more than 1 needs PostgreSQL).")
    ] = 1,
    database: DatabaseOption = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="URL partners use to reach this server (REST endpoint). Default: $COHORTHUB_PUBLIC_URL, "
            "else the address it listens on.",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    request_log: Annotated[
        bool,
        typer.Option("--request-log/--no-request-log", help="Log one line per HTTP request."),
    ] = True,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run a Currents delivery worker in this process.")
    ] = True,
    messaging: Annotated[
        bool,
        typer.Option("--messaging/--no-messaging", help="Send campaigns and run Canvases in this process."),
    ] = True,
) -> None:
    """Migrate the schema and serve the API (and deliver Currents unless --no-worker)."""
    public = (public_url or "").rstrip("/") or configured_public_url()
    try:
        settings = Settings.from_env(database_url=database, request_log=request_log)
        if workers > 1 and is_sqlite(settings.database_url):
            typer.echo(SQLITE_WORKERS, err=True)
            raise typer.Exit(2)
        container = bootstrap(settings)
    except CohorthubError as exc:
        fail(exc)
    config = uvicorn.Config(
        # One process reads container.settings per request: the public URL set below counts.
        create_app(container) if workers == 1 else "cohorthub.cli.serve:app_from_env",
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # the request log (cohorthub.access) has the request id and never a key
        log_config=log_config(level=log_level),
    )
    sock = config.bind_socket()
    url = listen_url(host, sock.getsockname()[1])
    container.settings = replace(container.settings, public_url=public or url)
    if workers > 1:  # the API processes are wired from the environment
        os.environ["COHORTHUB_DATABASE_URL"] = settings.database_url
        os.environ["COHORTHUB_PUBLIC_URL"] = public or url
        os.environ[REQUEST_LOG_ENV] = "1" if request_log else "0"
    with container.uow() as uow:
        record_server_addresses(uow=uow, listen_url=url, public_url=public, now=container.now())
    stop = start_worker(container)[0] if worker else None
    stop_messaging = start_messaging(container)[0] if messaging else None
    warmup = _warm(container) if workers == 1 else None
    typer.echo(banner(url=url, public_url=public, database=describe_url(settings.database_url)))
    try:
        if workers == 1:
            freeze_startup_heap()
            uvicorn.Server(config).run(sockets=[sock])
        else:
            Multiprocess(config, sockets=[sock]).run()
    finally:
        if warmup is not None:
            warmup.set()
        if stop is not None:
            stop.set()
        if stop_messaging is not None:
            stop_messaging.set()
        container.close()
        logging.shutdown()


def init(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Create the database (or bring an existing one to the current schema) and say where it is."""
    with wired(database, create=True) as c:
        emit({"database": describe_url(c.settings.database_url), "ready": True}, as_json=as_json)
