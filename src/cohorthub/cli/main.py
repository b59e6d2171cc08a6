"""The `cohorthub` entry point: mounts the command groups."""

from __future__ import annotations

import typer

from cohorthub.cli import app as sdk_app
from cohorthub.cli import currents, messaging, partner, serve, sink, sync, user, users, workspace

app = typer.Typer(
    help="cohorthub: a self-hosted engagement core speaking Braze's partner protocols.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags without `<bool>`, long names wrapped, never cut
)
app.add_typer(workspace.app, name="workspace")
app.add_typer(partner.app, name="partner")
app.add_typer(sdk_app.app, name="app")
app.command("serve")(serve.serve)
app.command("init")(serve.init)
app.add_typer(sync.app, name="sync")
app.add_typer(currents.app, name="currents")
app.command("currents-sink")(sink.currents_sink)
app.add_typer(messaging.campaigns, name="campaigns")
app.add_typer(messaging.canvas, name="canvas")
app.add_typer(user.app, name="user")
app.add_typer(users.app, name="users")


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
