"""Options and output shared by the command groups; errors become exit codes here."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from cohorthub.bootstrap import Container, bootstrap
from cohorthub.cli.output import render
from cohorthub.config import Settings
from cohorthub.errors import CohorthubError
from cohorthub.store.db import describe_url

T = TypeVar("T")

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Database URL (sqlite:///path or postgresql://…). "
        "Default: $COHORTHUB_DATABASE_URL, else ./var/cohorthub.sqlite",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

console = Console(soft_wrap=True)  # long ids, paths and URLs are never cut or wrapped
err_console = Console(stderr=True, soft_wrap=True)

#: Exit codes by error class status: usage 2, input 3, auth 4, not found 5, conflict 6, other 1.
EXIT_CODES = {400: 3, 401: 4, 403: 4, 404: 5, 409: 6}
#: The exit status of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130


def fail(exc: CohorthubError) -> NoReturn:
    """Print the error on one line and exit with its class's code."""
    err_console.print(f"[red]error:[/red] {exc.message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_CODES.get(exc.status, 1)) from exc


@contextmanager
def wired(database: str | None, *, create: bool = False) -> Iterator[Container]:
    """A container for one command, closed afterwards; domain errors exit with their code.

    Says on stderr which database it uses; only `create` makes a new SQLite database.
    """
    c = None
    try:
        settings = Settings.from_env(database_url=database)
        err_console.print(f"database: {describe_url(settings.database_url)}", highlight=False, soft_wrap=True)
        c = bootstrap(settings, create_database=create)
        yield c
    except CohorthubError as exc:
        fail(exc)
    finally:
        if c is not None:
            c.close()


def emit(data: dict[str, Any] | Sequence[dict[str, Any]], *, as_json: bool, title: str = "") -> None:
    """Print `data` as JSON, or for a human: a record for one item, a table (or records) for several."""
    if as_json:
        typer.echo(json.dumps(data, indent=None))
        return
    width = console.width if console.is_terminal else shutil.get_terminal_size().columns
    typer.echo("\n".join(render(data, width=width, title=title)))


def run(fn: Callable[[], T]) -> T:
    """Call `fn`; kept for symmetry with async callers."""
    return fn()
