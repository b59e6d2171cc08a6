"""`cohorthub users …`: the workspace's users (bulk import from a CSV or JSON lines file)."""

from __future__ import annotations

import codecs
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cohorthub.cli.common import EXIT_INTERRUPTED, DatabaseOption, JsonOption, emit, err_console, wired
from cohorthub.identity.bulk import format_of_path, parse_rows
from cohorthub.identity.errors import InvalidImportFile
from cohorthub.identity.imports import ImportSummary
from cohorthub.workspaces.services import require_workspace

app = typer.Typer(help="The workspace's users: bulk import.", no_args_is_help=True)

_BLOCK = 1 << 20


def check_utf8(path: Path) -> None:
    """`InvalidImportFile` unless the whole file is UTF-8 text with something in it (read once, in blocks)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, blank = 0, True
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as exc:
                raise InvalidImportFile(
                    f"The file is not UTF-8 text (invalid byte at offset {offset + exc.start})"
                ) from None
            blank = blank and not text.lstrip("\ufeff").strip()
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InvalidImportFile("The file is not UTF-8 text (it ends inside a character)") from None
    if blank:
        raise InvalidImportFile("The file is empty")


def interrupted_message(done: ImportSummary, *, exact: bool) -> str:
    """What an interrupted import committed (`exact`: that much, else at least that much), and what next."""
    first = "the first" if exact else "at least the first"
    return (
        f"interrupted: {first} {done.committed:,} rows are committed ({done.created:,} users created, "
        f"{done.updated:,} updated, {done.rejected:,} rejected); importing the same file again finishes "
        "the rest (the users already there count as updated)"
    )


@contextmanager
def _stop_on_ctrl_c() -> Iterator[threading.Event]:
    """An event the first Ctrl-C sets (the import stops after the chunk it is writing); the second one
    interrupts at once (KeyboardInterrupt). The previous handler comes back afterwards."""
    stopping = threading.Event()

    def on_sigint(_signum: int, _frame: object) -> None:
        if stopping.is_set():
            raise KeyboardInterrupt
        stopping.set()
        err_console.print("stopping after the chunk being written (Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stopping
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _progress(path: Path, header: bool, quiet: bool) -> Iterator[Callable[[ImportSummary], None] | None]:
    """A progress bar on a terminal (rows committed, of the file's lines less a header); else nothing."""
    if quiet or not err_console.is_terminal:
        yield None
        return
    with path.open("rb") as f:
        total = sum(block.count(b"\n") for block in iter(lambda: f.read(_BLOCK), b""))
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("rows", total=max(total - header, 1))
        yield lambda summary: bar.update(task, completed=summary.rows)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A CSV file, or JSON lines (.jsonl / .ndjson).")],
    workspace: Annotated[str, typer.Option("--workspace", help="Workspace id.")],
    format_: Annotated[
        Literal["csv", "jsonl"] | None,
        typer.Option("--format", help="csv or jsonl (default: from the file name)."),
    ] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create and update users from a file, 5,000 rows per transaction; prints the summary."""
    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a readable file", param_hint="FILE")
    kind = format_ or format_of_path(file.name)
    with wired(database) as c:
        with c.uow(readonly=True) as uow:
            require_workspace(uow=uow, workspace_id=workspace)
        check_utf8(file)
        progress_bar = _progress(file, kind == "csv", as_json)
        done = ImportSummary()  # the chunks committed so far, for a second Ctrl-C's message

        def committed(summary: ImportSummary) -> None:
            nonlocal done
            done = summary
            if progress is not None:
                progress(summary)

        try:
            with (
                _stop_on_ctrl_c() as stopping,
                file.open(encoding="utf-8-sig", newline="") as lines,
                progress_bar as progress,
            ):
                summary = c.import_users(
                    workspace, parse_rows(kind, lines), progress=committed, stop=stopping.is_set
                )
        except KeyboardInterrupt:  # the second Ctrl-C: the chunk it cut short may or may not be in
            err_console.print(interrupted_message(done, exact=False))
            raise typer.Exit(EXIT_INTERRUPTED) from None
    if summary.stopped:
        err_console.print(interrupted_message(summary, exact=True))
        raise typer.Exit(EXIT_INTERRUPTED)
    wire = summary.wire()
    if as_json:
        emit(wire, as_json=True)
        return
    errors = wire.pop("errors")
    wire.pop("message")
    emit(wire, as_json=False, title=f"Imported {file.name}")
    if errors:
        title = "Rejected rows" + (f" (the first {len(errors)})" if summary.rejected > len(errors) else "")
        emit(errors, as_json=False, title=title)
