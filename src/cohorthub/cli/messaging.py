"""`cohorthub campaigns …` and `cohorthub canvas …`: define, preview, launch, pause, resume, archive,
test-send, stats; `cohorthub campaigns worker` runs the messaging worker (campaigns and Canvases)."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from cohorthub.api.programs import program_json
from cohorthub.cli.common import DatabaseOption, JsonOption, emit, err_console, wired
from cohorthub.errors import InvalidInput
from cohorthub.messaging import bounces, services
from cohorthub.messaging.channels.bounce_listener import BounceListener
from cohorthub.messaging.events import Source
from cohorthub.messaging.outgoing import Item
from cohorthub.messaging.ports import UserRow
from cohorthub.runtimes import messaging_runtime, start_messaging, tracker_for

Workspace = Annotated[str, typer.Option("--workspace", help="Workspace id.")]
IdArg = Annotated[str, typer.Argument(help="Campaign or Canvas id.")]
FileArg = Annotated[Path, typer.Argument(help="JSON definition (docs/messaging.md); - reads stdin.")]


def _read(path: Path) -> Any:
    try:
        text = typer.get_text_stream("stdin").read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not JSON: {exc}") from exc


def _row(p: Any) -> dict[str, Any]:
    data = program_json(p)
    data.pop("definition")
    return data


def _action(kind: str, fn: Any) -> Any:
    def action(
        workspace: Workspace, program_id: IdArg, database: DatabaseOption = None, as_json: JsonOption = False
    ) -> None:
        with wired(database) as c, c.uow() as uow:
            services.get_program(uow=uow, workspace_id=workspace, program_id=program_id, kind=kind)
            emit(
                _row(fn(uow=uow, workspace_id=workspace, program_id=program_id, now=c.now())), as_json=as_json
            )

    return action


def _group(kind: str, title: str) -> typer.Typer:
    app = typer.Typer(help=f"{title}: define, preview, launch and follow.", no_args_is_help=True)

    @app.command("create")
    def create(
        workspace: Workspace, file: FileArg, database: DatabaseOption = None, as_json: JsonOption = False
    ) -> None:
        """Create a draft from a JSON definition."""
        with wired(database) as c, c.uow() as uow:
            p = services.create_program(
                uow=uow, workspace_id=workspace, kind=kind, raw=_read(file), now=c.now()
            )
            emit(_row(p), as_json=as_json)

    @app.command("list")
    def list_(
        workspace: Workspace,
        archived: bool = False,
        database: DatabaseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """List the workspace's drafts, active, paused (and with --archived, archived) ones."""
        with wired(database) as c, c.uow(readonly=True) as uow:
            rows = services.list_programs(
                uow=uow, workspace_id=workspace, kind=kind, include_archived=archived
            )
            emit([_row(p) for p in rows], as_json=as_json, title=title)

    @app.command("show")
    def show(workspace: Workspace, program_id: IdArg, database: DatabaseOption = None) -> None:
        """Print the definition and lifecycle as JSON."""
        with wired(database) as c, c.uow(readonly=True) as uow:
            p = services.get_program(uow=uow, workspace_id=workspace, program_id=program_id, kind=kind)
            typer.echo(json.dumps(program_json(p), indent=2))

    for name, fn in (
        ("launch", services.launch_program),
        ("pause", services.pause_program),
        ("resume", services.resume_program),
        ("archive", services.archive_program),
    ):
        app.command(name, help=f"{name.capitalize()} the {kind}.")(_action(kind, fn))

    @app.command("stats")
    def stats(workspace: Workspace, program_id: IdArg, database: DatabaseOption = None) -> None:
        """Sent, delivered, bounced, opened, clicked, unsubscribed, converted (per step for a Canvas)."""
        with wired(database) as c, c.uow(readonly=True) as uow:
            typer.echo(
                json.dumps(
                    services.program_stats(uow=uow, workspace_id=workspace, program_id=program_id), indent=2
                )
            )

    if kind == "campaign":

        @app.command("preview")
        def preview(
            workspace: Workspace,
            program_id: IdArg,
            user: Annotated[
                str | None,
                typer.Option(
                    "--user", help="External id to render for (default: the first user of the audience)."
                ),
            ] = None,
            database: DatabaseOption = None,
        ) -> None:
            """Exact audience size now, reachable users, a sample, and the message rendered for one user."""
            with wired(database) as c, c.uow(readonly=True) as uow:
                p = services.preview_campaign(
                    uow=uow,
                    indexes=c.segments,
                    membership=c.membership,
                    workspace_id=workspace,
                    program_id=program_id,
                    external_id=user,
                    now=c.now(),
                )
                typer.echo(
                    json.dumps(
                        {
                            "size": p.size,
                            "reachable": p.reachable,
                            "sample": p.sample,
                            "rendered": p.rendered,
                            "render_error": p.render_error,
                        },
                        indent=2,
                    )
                )

        @app.command("test-send")
        def test_send(
            workspace: Workspace,
            program_id: IdArg,
            to: Annotated[str, typer.Option("--to", help="Address to send the test to.")],
            database: DatabaseOption = None,
        ) -> None:
            """Send the message (subject prefixed [TEST]) to one address through the configured SMTP."""
            with wired(database) as c:
                with c.uow(readonly=True) as uow:
                    p = services.get_program(
                        uow=uow, workspace_id=workspace, program_id=program_id, kind=kind
                    )
                spec = services.campaign_spec(p)
                runtime = messaging_runtime(c)
                item = Item(
                    Source(workspace, campaign_id=p.id, campaign_name=p.name),
                    UserRow(0, "", None, to, None, None, {}, {}),
                    "test",
                    spec.message,
                )
                outcome = runtime.sender.test_send(item, to)
                runtime.channels.email.close()
                typer.echo(f"{outcome.state}{': ' + outcome.detail if outcome.detail else ''}")
                if outcome.state != "delivered":
                    raise typer.Exit(1)

        @app.command("worker")
        def worker(database: DatabaseOption = None) -> None:
            """Send due campaigns and run Canvas journeys until interrupted (several may run at once)."""
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            with wired(database) as c:
                stop, thread = start_messaging(c)
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, lambda *_: stop.set())
                err_console.print("messaging worker running")
                while thread.is_alive():
                    thread.join(timeout=0.5)

        @app.command("bounces")
        def bounces_(
            listen: Annotated[
                str, typer.Option("--listen", help="host:port of the SMTP server that receives bounces.")
            ] = "127.0.0.1:2525",
            database: DatabaseOption = None,
        ) -> None:
            """Receive bounces (DSNs, RFC 3464) over SMTP until interrupted: each is matched to its message
            by the signed return path it was sent to; Bounce, SoftBounce or Deferral; others ignored."""
            host, _, port = listen.rpartition(":")
            if not host or not port.isdigit():
                raise InvalidInput(f"--listen: expected host:port, got {listen!r}")
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            with wired(database) as c:
                tracker = tracker_for(c)

                def record(raw: bytes, recipients: list[str]) -> bounces.BounceResult:
                    with c.uow() as uow:
                        return bounces.record_bounce(
                            uow=uow, tracker=tracker, raw=raw, recipients=recipients, now=c.now()
                        )

                listener = BounceListener(record, host=host.strip("[]"), port=int(port))
                listener.start()
                stop = threading.Event()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, lambda *_: stop.set())
                err_console.print(f"receiving bounces on {listen}")
                try:
                    while not stop.wait(0.5):
                        pass
                finally:
                    listener.stop()

    return app


campaigns = _group("campaign", "Campaigns")
canvas = _group("canvas", "Canvases")
