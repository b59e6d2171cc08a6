"""`cohorthub currents …`: manage connectors, read statistics, replay, run a delivery worker."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from typing import Annotated, Any

import typer

from cohorthub.bootstrap import Container
from cohorthub.cli.common import DatabaseOption, JsonOption, emit, err_console, wired
from cohorthub.currents import retention, services
from cohorthub.currents.errors import InvalidConnector
from cohorthub.currents.model import DEFAULT_BATCH_SIZE, DEFAULT_EVENTS, Connector, ConnectorStats
from cohorthub.currents.transport import HttpSender
from cohorthub.currents.worker import DeliveryWorker, WorkerOptions

app = typer.Typer(help="Currents: export events to Heap or any HTTP endpoint.", no_args_is_help=True)
ConnectorArg = Annotated[str, typer.Argument(help="Connector id.")]


def connector_row(c: Connector) -> dict[str, Any]:
    """A connector for display (the token only as set/unset)."""
    return {
        "id": c.id,
        "workspace_id": c.workspace_id,
        "kind": c.kind,
        "url": c.url,
        "token": "set" if c.token else "none",
        "events": str(c.events),
        "batch_size": c.batch_size,
        "paused": c.paused,
    }


def stats_row(s: ConnectorStats) -> dict[str, Any]:
    """Statistics for display."""
    row: dict[str, Any] = {f: getattr(s, f) for f in ConnectorStats.__dataclass_fields__}
    row["state"] = s.state.value
    return row


def parse_since(text: str, *, now: float) -> float:
    """`2024-05-01T00:00:00Z`, Unix seconds, or a duration ago (`90m`, `2h`, `3d`)."""
    text = text.strip()
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    try:
        return float(text)
    except ValueError:
        pass
    if text[-1:] in units and text.isascii() and text[:-1].replace(".", "", 1).isdigit():
        return now - float(text[:-1]) * units[text[-1]]
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidConnector(
            f"--since must be an ISO 8601 time, Unix seconds or a duration: {text}"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


@app.command("create")
def create(
    workspace: Annotated[str, typer.Option("--workspace", help="Workspace id.")],
    kind: Annotated[str, typer.Option("--kind", help="heap | http")],
    url: Annotated[str, typer.Option("--url", help='Endpoint receiving POST {"events": […]}.')],
    token: Annotated[
        str | None, typer.Option("--token", help="Bearer token sent with every request.")
    ] = None,
    events: Annotated[
        str, typer.Option("--events", help="Event type globs, comma-separated.")
    ] = DEFAULT_EVENTS,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Events per request.")] = DEFAULT_BATCH_SIZE,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a connector; it exports the workspace's events recorded from now on."""
    with wired(database) as c, c.uow() as uow:
        found = services.create_connector(
            uow=uow,
            workspace_id=workspace,
            kind=kind,
            url=url,
            token=token,
            events=events,
            batch_size=batch_size,
            now=c.now(),
        )
    emit(connector_row(found), as_json=as_json)


@app.command("list")
def list_(
    workspace: Annotated[str | None, typer.Option("--workspace", help="Only this workspace.")] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """List connectors."""
    with wired(database) as c, c.uow(readonly=True) as uow:
        rows = [connector_row(x) for x in services.list_connectors(uow=uow, workspace_id=workspace)]
    emit(rows, as_json=as_json, title="Currents connectors")


def _set_paused(connector: str, paused: bool, database: str | None, as_json: bool) -> None:
    with wired(database) as c, c.uow() as uow:
        found = services.set_paused(uow=uow, connector_id=connector, paused=paused)
    emit(connector_row(found), as_json=as_json)


@app.command("pause")
def pause(connector: ConnectorArg, database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Stop sending (events keep queueing)."""
    _set_paused(connector, True, database, as_json)


@app.command("resume")
def resume(connector: ConnectorArg, database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Resume sending."""
    _set_paused(connector, False, database, as_json)


@app.command("delete")
def delete(connector: ConnectorArg, database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Delete a connector with its queued batches and dead letters."""
    with wired(database) as c, c.uow() as uow:
        services.delete_connector(uow=uow, connector_id=connector)
    emit({"id": connector, "deleted": True}, as_json=as_json)


@app.command("stats")
def stats(
    connector: Annotated[str | None, typer.Argument(help="Connector id (default: all).")] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queued, in flight, delivered, retried, dropped, oldest undelivered age, last error."""
    with wired(database) as c, c.uow(readonly=True) as uow:
        ids = [connector] if connector else [x.id for x in services.list_connectors(uow=uow)]
        rows = [stats_row(services.connector_stats(uow=uow, connector_id=i, now=c.now())) for i in ids]
    emit(rows[0] if connector else rows, as_json=as_json, title="Currents delivery")


@app.command("replay")
def replay(
    connector: ConnectorArg,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Re-send events recorded since: ISO time, Unix seconds, or 2h."),
    ] = None,
    dead_letters: Annotated[bool, typer.Option("--dead-letters", help="Re-send the dropped events.")] = False,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queue events again (same event ids; receivers dedupe on id)."""
    with wired(database) as c, c.uow() as uow:
        start = parse_since(since, now=c.now()) if since is not None else None
        count = services.replay_events(
            uow=uow, connector_id=connector, since=start, dead_letters=dead_letters, now=c.now()
        )
    emit({"id": connector, "queued": count}, as_json=as_json)


@app.command("prune")
def prune(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than", help="Keep events recorded within this period (90m, 36h, 7d; default: setting)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")] = False,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete old outbox events every connector of their workspace has delivered or dead-lettered."""
    with wired(database) as c:
        period = c.settings.outbox_retention_seconds if older_than is None else parse_period(older_than)
        report = retention.prune_outbox(uow=c.uow, older_than=period, dry_run=dry_run, now=c.now())
    emit(
        {
            "removed": report.removed,
            "dry_run": report.dry_run,
            "older_than_seconds": period,
            "before": report.before,
            "workspaces": report.workspaces,
        },
        as_json=as_json,
    )


def parse_period(text: str) -> float:
    """`90`, `90s`, `15m`, `36h` or `7d` as seconds."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    text = text.strip().lower()
    number, scale = (text[:-1], units[text[-1]]) if text[-1:] in units else (text, 1.0)
    try:
        seconds = float(number) * scale
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise InvalidConnector(f"--older-than must be a positive duration such as 7d, 36h or 90m: {text}")
    return seconds


def start_worker(
    c: Container, *, timeout: float = 10.0, lease_seconds: float = 20.0, in_flight: int = 4
) -> tuple[threading.Event, threading.Thread]:
    """Run a delivery worker in background threads; set the event to stop it.

    A send starts only in the first half of its lease, so the lease is at least twice the timeout.
    """
    worker = DeliveryWorker(
        uow=c.uow,
        sender_factory=lambda: HttpSender(timeout=timeout),
        now=c.now,
        options=WorkerOptions(
            lease_seconds=max(lease_seconds, 2 * timeout),
            in_flight=max(1, in_flight),
            retention_seconds=c.settings.outbox_retention_seconds,
        ),
    )

    def connector_ids() -> list[str]:
        with c.uow(readonly=True) as uow:
            return [x.id for x in services.list_connectors(uow=uow)]

    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, connector_ids), name="currents", daemon=True)
    thread.start()
    return stop, thread


@app.command("worker")
def worker(
    database: DatabaseOption = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = 10.0,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            help="Seconds before a dead worker's batches are sent again (at least twice --timeout).",
        ),
    ] = 20.0,
    in_flight: Annotated[
        int,
        typer.Option(
            "--in-flight", help="Requests on the wire at once per connector (1 keeps batches in order)."
        ),
    ] = 4,
) -> None:
    """Deliver every connector's events until interrupted (SIGINT/SIGTERM finish the current round)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with wired(database) as c:
        stop, thread = start_worker(c, timeout=timeout, lease_seconds=lease, in_flight=in_flight)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        err_console.print("currents worker running")
        while thread.is_alive():
            thread.join(timeout=0.5)
