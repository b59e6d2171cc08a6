"""`cohorthub serve`: migrate, record the address, serve HTTP. `cohorthub init`: create a database."""

from __future__ import annotations

import logging
import socket
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from cohorthub.api.app import create_app
from cohorthub.bootstrap import bootstrap
from cohorthub.cli.common import DatabaseOption, JsonOption, emit, fail, wired
from cohorthub.cli.currents import start_worker
from cohorthub.config import Settings, configured_public_url
from cohorthub.errors import CohorthubError
from cohorthub.partners.overview import record_server_addresses
from cohorthub.runtimes import start_messaging
from cohorthub.segments.warmup import start_warmup
from cohorthub.store.db import describe_url


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
        container = bootstrap(settings)
    except CohorthubError as exc:
        fail(exc)
    config = uvicorn.Config(
        create_app(container),  # reads container.settings per request: the public URL set below counts
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # the request log (cohorthub.access) has the request id and never a key
        log_config=log_config(level=log_level),
    )
    sock = config.bind_socket()
    url = listen_url(host, sock.getsockname()[1])
    container.settings = replace(container.settings, public_url=public or url)
    with container.uow() as uow:
        record_server_addresses(uow=uow, listen_url=url, public_url=public, now=container.now())
    stop = start_worker(container)[0] if worker else None
    stop_messaging = start_messaging(container)[0] if messaging else None
    warmup = start_warmup(  # segment indexes load in the background (docs/segments.md)
        uow=lambda: container.uow(readonly=True),
        indexes=container.segments,
        membership=container.membership,
        now=container.now,
    )
    typer.echo(banner(url=url, public_url=public, database=describe_url(settings.database_url)))
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
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
