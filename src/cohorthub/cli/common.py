"""Options and output shared by the command groups; errors become exit codes here."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cohorthub.bootstrap import Container, bootstrap
from cohorthub.config import Settings
from cohorthub.errors import CohorthubError

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

console = Console()
err_console = Console(stderr=True)

#: Exit codes by error class status: usage 2, input 3, auth 4, not found 5, conflict 6, other 1.
EXIT_CODES = {400: 3, 401: 4, 403: 4, 404: 5, 409: 6}


@contextmanager
def wired(database: str | None) -> Iterator[Container]:
    """A container for one command, closed afterwards; domain errors exit with their code."""
    c = None
    try:
        c = bootstrap(Settings.from_env(database_url=database))
        yield c
    except CohorthubError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(EXIT_CODES.get(exc.status, 1)) from exc
    finally:
        if c is not None:
            c.close()


def emit(data: dict[str, Any] | list[dict[str, Any]], *, as_json: bool, title: str = "") -> None:
    """Print `data` as JSON or as a table."""
    if as_json:
        typer.echo(json.dumps(data, indent=None))
        return
    rows = data if isinstance(data, list) else [data]
    table = Table(title=title or None)
    columns = list(rows[0].keys()) if rows else ["(none)"]
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    console.print(table)


def run(fn: Callable[[], T]) -> T:
    """Call `fn`; kept for symmetry with async callers."""
    return fn()
