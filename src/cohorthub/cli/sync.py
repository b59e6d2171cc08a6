"""``cohorthub sync``: keep a cohort on a partner-protocol server in step with a source.

A thin layer over ``cohorthub.partner_client``: parse options, print, map errors to exit codes.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cohorthub.cli.output import render
from cohorthub.partner_client import (
    ApiError,
    AuthenticationError,
    Cohort,
    CohortSyncClient,
    ConfigurationError,
    PartnerClientError,
    RequestRejected,
    RetriesExhausted,
    RetryPolicy,
    Source,
    SourceError,
    SqlSource,
    StateError,
    StateStore,
    SyncResult,
    UnexpectedResponse,
    open_file_source,
    parse_namespace,
)
from cohorthub.partner_client.retry import Failure
from cohorthub.partner_client.sources import DelimitedSource

app = typer.Typer(
    help="Sync cohorts to a server speaking the partner cohort import protocol (sends only what changed).",
    no_args_is_help=True,
)

EXIT_OK, EXIT_CONFIG, EXIT_SOURCE, EXIT_STATE = 0, 2, 3, 4
EXIT_AUTH, EXIT_REJECTED, EXIT_UNAVAILABLE, EXIT_UNEXPECTED, EXIT_INTERRUPTED = 5, 6, 7, 8, 130
EXIT_CODES: tuple[tuple[type[PartnerClientError], int], ...] = (
    (ConfigurationError, EXIT_CONFIG),
    (SourceError, EXIT_SOURCE),
    (StateError, EXIT_STATE),
    (AuthenticationError, EXIT_AUTH),
    (RequestRejected, EXIT_REJECTED),
    (RetriesExhausted, EXIT_UNAVAILABLE),
    (UnexpectedResponse, EXIT_UNEXPECTED),
    (ApiError, EXIT_UNEXPECTED),
)
FATAL_IN_SCHEDULE = frozenset({EXIT_CONFIG, EXIT_STATE, EXIT_AUTH, EXIT_REJECTED})
"""With --every, these stop the loop; other failures are retried at the next tick."""
PROGRESS_THRESHOLD = 10_000
DEFAULT_STATE = Path("var/sync-state.sqlite")
_NO_STATE = "no sync state at {} (the first `sync run` with this --state creates it)"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

err = Console(stderr=True, soft_wrap=True)  # long paths and URLs stay whole
out = Console(highlight=False, soft_wrap=True)


def exit_code_for(error: PartnerClientError) -> int:
    """The exit code of an error, by class (most specific first)."""
    return next((code for cls, code in EXIT_CODES if isinstance(error, cls)), 1)


def parse_interval(text: str) -> float:
    """Seconds in ``90``, ``30s``, ``15m``, ``1h30m`` or ``1d``."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise ConfigurationError(f"invalid interval {text!r}: use e.g. 30s, 15m, 1h30m")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ConfigurationError("the interval must be positive")
    return seconds


def build_source(
    source: Path | None, source_sql: str | None, source_url: str | None, id_type: str, header: bool | None
) -> Source:
    """The source named by the options (exactly one of a file or a SQL query)."""
    if (source is None) == (source_sql is None):
        raise ConfigurationError("give exactly one of --source FILE or --source-sql QUERY")
    if source_sql is not None:
        if not source_url:
            raise ConfigurationError("--source-sql needs --source-url (e.g. sqlite:///members.db)")
        return SqlSource(source_url, source_sql, id_type=id_type)
    assert source is not None
    if header is not None and source.suffix.lower() not in {".jsonl", ".ndjson"}:
        return DelimitedSource(source, id_type=id_type, header=header)
    return open_file_source(source, id_type=id_type)


def _emit_json(payload: dict[str, Any]) -> None:
    """One JSON document per line on stdout (``--every`` prints one line per sync)."""
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _fail(error: PartnerClientError, as_json: bool) -> int:
    code = exit_code_for(error)
    if as_json:
        payload = {"status": "error", "error": type(error).__name__, "message": str(error), "exit_code": code}
        _emit_json(payload)
    else:
        text = error.message if isinstance(error, AuthenticationError) else str(error)  # hint: own line
        err.print(f"[red]error:[/red] {type(error).__name__}: {text}", markup=True, highlight=False)
        if isinstance(error, AuthenticationError):
            err.print(f"[yellow]hint:[/yellow] {error.hint}")
        if isinstance(error, RequestRejected):
            err.print(f"offending part of the request: {error.request_part}", markup=False)
    return code


def _print_result(result: SyncResult, as_json: bool) -> None:
    if as_json:
        _emit_json({"status": "ok", **result.as_dict()})
        return
    verb = "would send" if result.dry_run else "sent"
    name = " name," if result.name_sent else ""
    out.print(
        f"{result.cohort_id}: {verb}{name} {result.adds:,} adds and {result.removes:,} removes; "
        f"{result.members:,} members; {result.requests} requests in {result.duration_s:.2f}s"
    )
    for ns, (adds, removes) in sorted(result.by_namespace.items()):
        out.print(f"  {ns}: +{adds:,} -{removes:,}")
    if result.sample_adds:
        out.print("  sample adds: " + ", ".join(result.sample_adds))
    if result.sample_removes:
        out.print("  sample removes: " + ", ".join(result.sample_removes))


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled or not err.is_terminal:
        yield None
        return
    columns = (TextColumn("syncing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("sync", total=None)

        def update(done: int, total: int) -> None:
            if total >= PROGRESS_THRESHOLD:
                bar.update(task, completed=done, total=total)

        yield update


def _on_retry(as_json: bool) -> Callable[[str, int, Failure, float], None]:
    def report(path: str, attempt: int, failure: Failure, delay: float) -> None:
        if not as_json:
            what = f"HTTP {failure.status}" if failure.status is not None else "network error"
            err.print(f"{path}: {what}, retry {attempt} in {delay:.1f}s", highlight=False)

    return report


@app.command()
def run(
    endpoint: Annotated[str, typer.Option(help="Server base URL.", envvar="COHORTHUB_SYNC_ENDPOINT")],
    partner: Annotated[str, typer.Option(help="Partner name in the path /partners/{partner}/...")],
    partner_key: Annotated[str, typer.Option(help="partner_api_key.", envvar="COHORTHUB_PARTNER_KEY")],
    data_import_key: Annotated[
        str, typer.Option(help="The workspace's data import key.", envvar="COHORTHUB_DATA_IMPORT_KEY")
    ],
    cohort_id: Annotated[str, typer.Option(help="Stable cohort id, unique per workspace.")],
    name: Annotated[str, typer.Option(help="Cohort name shown in the segment filter.")],
    source: Annotated[Path | None, typer.Option(help="CSV, TSV or JSON-lines file of members.")] = None,
    source_sql: Annotated[str | None, typer.Option(help="SQL query returning the members.")] = None,
    source_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL for --source-sql.")] = None,
    id_type: Annotated[str, typer.Option(help="external_id, device_id or alias:LABEL.")] = "external_id",
    header: Annotated[bool | None, typer.Option("--header/--no-header", help="Default: detect.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the diff, send nothing.")] = False,
    every: Annotated[str | None, typer.Option(help="Keep syncing at this interval (e.g. 15m).")] = None,
    state: Annotated[Path, typer.Option(help="State file.")] = DEFAULT_STATE,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    timeout: Annotated[float, typer.Option(help="HTTP timeout in seconds.")] = 30.0,
    max_attempts: Annotated[
        int, typer.Option(min=1, help="Attempts per request on 5xx and network errors (429/423: 20).")
    ] = 6,
) -> None:
    """Sync one cohort: its name when new or renamed, then entries and exits since the last sync."""
    try:
        parse_namespace(id_type)
        interval = parse_interval(every) if every else None
        cohort = Cohort(cohort_id, name)
    except ValueError as exc:
        raise typer.Exit(_fail(ConfigurationError(str(exc)), as_json)) from exc
    except PartnerClientError as exc:
        raise typer.Exit(_fail(exc, as_json)) from exc
    options = (source, source_sql, source_url, id_type, header)
    if not as_json:
        err.print(f"state: {state.resolve()}", highlight=False, soft_wrap=True)
    code = EXIT_OK
    syncing = False
    try:
        with CohortSyncClient(
            endpoint,
            partner=partner,
            partner_api_key=partner_key,
            data_import_key=data_import_key,
            state=state,
            timeout=timeout,
            policy=RetryPolicy(max_attempts_transient=max_attempts),
            on_retry=_on_retry(as_json),
        ) as client:
            while True:
                syncing = True
                code = _sync_once(client, cohort, options, dry_run, as_json)
                syncing = False
                if interval is None or code in FATAL_IN_SCHEDULE:
                    break
                time.sleep(interval)
    except KeyboardInterrupt:
        err.print("interrupted: the state keeps every acknowledged chunk; the next run resumes")
        code = EXIT_INTERRUPTED if syncing else EXIT_OK
    except PartnerClientError as exc:
        code = _fail(exc, as_json)
    raise typer.Exit(code)


def _sync_once(
    client: CohortSyncClient,
    cohort: Cohort,
    options: tuple[Path | None, str | None, str | None, str, bool | None],
    dry_run: bool,
    as_json: bool,
) -> int:
    try:
        src = build_source(*options)
        with _progress(not as_json) as on_progress:
            result = client.sync(cohort, src, dry_run=dry_run, on_progress=on_progress)
    except PartnerClientError as exc:
        return _fail(exc, as_json)
    _print_result(result, as_json)
    return EXIT_OK


@app.command()
def status(
    state: Annotated[Path, typer.Option(help="State file.")] = DEFAULT_STATE,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per cohort: last sync, members, adds and removes sent, failures."""
    if not state.exists():
        raise typer.Exit(_fail(ConfigurationError(_NO_STATE.format(state.resolve())), as_json))
    try:
        store = StateStore(state)
        cohorts = store.cohorts()
        store.close()
    except PartnerClientError as exc:
        raise typer.Exit(_fail(exc, as_json)) from exc
    rows: list[dict[str, Any]] = [
        {
            "endpoint": c.endpoint,
            "partner": c.partner,
            "cohort_id": c.cohort_id,
            "name": c.name_sent,
            "last_success_at": c.last_success_at,
            "last_attempt_at": c.last_attempt_at,
            "members": c.members,
            "adds_sent": c.adds_sent,
            "removes_sent": c.removes_sent,
            "failures": c.failures,
            "last_error": c.last_error,
        }
        for c in cohorts
    ]
    if as_json:
        _emit_json({"cohorts": rows})
        return
    width = shutil.get_terminal_size().columns
    typer.echo("\n".join(render(rows, width=width, title=f"Cohorts in {state.resolve()}")))


@app.command()
def reset(
    state: Annotated[Path, typer.Option(help="State file.")] = DEFAULT_STATE,
    cohort_id: Annotated[str | None, typer.Option(help="Only this cohort.")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Only cohorts of this endpoint.")] = None,
    partner: Annotated[str | None, typer.Option(help="Only cohorts of this partner.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Forget what was sent, so the next sync resends the name and every member."""
    if not state.exists():
        raise typer.Exit(_fail(ConfigurationError(_NO_STATE.format(state.resolve())), as_json))
    try:
        store = StateStore(state)
        keys = [
            c.key
            for c in store.cohorts()
            if (cohort_id is None or c.cohort_id == cohort_id)
            and (endpoint is None or c.endpoint == endpoint.rstrip("/"))
            and (partner is None or c.partner == partner)
        ]
        count = store.reset(keys)
        store.close()
    except PartnerClientError as exc:
        raise typer.Exit(_fail(exc, as_json)) from exc
    if as_json:
        _emit_json({"status": "ok", "reset": count})
    else:
        out.print(f"reset {count} cohort(s): the next sync resends everything")


if __name__ == "__main__":  # pragma: no cover - `python -m cohorthub.cli.sync`
    sys.exit(app())
