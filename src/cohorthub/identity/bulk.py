"""Bulk user import files: CSV in Braze's CSV import conventions, and JSON lines (pure).

A file is read row by row into `ImportRow`s (the user a row names and its attribute update, with
the same rules as a `/users/track` attributes object) or `Rejection`s (its line number and why).
A bad row never stops the import; only a file that cannot be read as a whole raises
`InvalidImportFile` (nothing written) or, for a body of another type, `UnsupportedImportType`.

CSV: a header row; users are named by `external_id`, `braze_id` (updates only) or
`user_alias_name` + `user_alias_label`; standard fields keep their rules; every other column is a
custom attribute whose type is inferred per cell (integer, float, boolean, time, string) or
declared in the header (`plan:string`). Empty cells are left unset.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import msgspec

from cohorthub.identity.attributes import (
    CONTROL_KEYS,
    IGNORED_FIELDS,
    AttributeUpdate,
    CustomOp,
    SetValue,
    check_custom_name,
    parse_attributes,
    parse_scalar,
    parse_standard,
)
from cohorthub.identity.errors import InvalidImportFile, UnsupportedImportType
from cohorthub.identity.model import (
    STANDARD_FIELDS,
    UserAlias,
    encode_custom,
    iso_time,
    parse_time,
    text_problem,
)
from cohorthub.identity.requests import Target, parse_target

ImportFormat = Literal["csv", "jsonl"]
#: Media types of an import body, by format.
MEDIA_TYPES: dict[str, ImportFormat] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json-lines": "jsonl",
}
#: Declared types a CSV header may give a custom attribute (`name:type`).
DECLARED_TYPES = ("string", "integer", "int", "float", "number", "boolean", "bool", "time")
ALIAS_COLUMNS = ("user_alias_name", "user_alias_label")
IDENTIFIER_HINT = "a column external_id, braze_id, or user_alias_name with user_alias_label is required"
_INTEGER = re.compile(r"^[+-]?(0|[1-9][0-9]{0,17})$")
_FLOAT = re.compile(r"^[+-]?(0|[1-9][0-9]*)?(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
_json = msgspec.json.Decoder()


@dataclass(slots=True)
class ImportRow:
    """One usable row: the user it names, the attributes it sets, and `created` (see `created_values`)."""

    line: int
    target: Target
    update: AttributeUpdate
    created: tuple[Any, ...] | None = None


def created_values(target: Target, update: AttributeUpdate) -> tuple[Any, ...] | None:
    """What a row stores when it creates its user alone: standard fields, custom attributes as JSON text.

    `(*values in the order of STANDARD_FIELDS, custom attributes)`, as `/users/track` would store a
    new user the row names by external id and only sets values on (no `email_subscribe`: its change
    is an event); None for any other row. Made while the file is read, in the reader's thread, so
    the writer's thread only puts the values into rows (`identity.imports.new_users`).
    """
    if target.kind != "external_id" or not target.create or target.device_id is not None:
        return None
    standard = update.standard
    if standard.get("email_subscribe") is not None:
        return None
    custom: dict[str, Any] = {}
    for key, op in update.custom.items():
        if type(op) is not SetValue:
            return None
        if op.value is not None:
            custom[key] = op.value
    return (*map(standard.get, STANDARD_FIELDS), encode_custom(custom).decode())


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row that was not applied: its line number (1 = the first line of the file) and why."""

    line: int
    reason: str

    def wire(self) -> dict[str, Any]:
        """The summary's error object."""
        return {"line": self.line, "reason": self.reason}


Parsed = ImportRow | Rejection


def format_of(content_type: str) -> ImportFormat:
    """The import format a `Content-Type` declares; `UnsupportedImportType` for any other."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise UnsupportedImportType("Content-Type must be text/csv or application/x-ndjson")
    return MEDIA_TYPES[media]


def format_of_path(name: str) -> ImportFormat:
    """The import format a file name's extension implies (`.jsonl`/`.ndjson`, else CSV)."""
    return "jsonl" if name.lower().endswith((".jsonl", ".ndjson")) else "csv"


def decode_text(data: bytes) -> str:
    """The file as text (a UTF-8 byte order mark is dropped); `InvalidImportFile` when it is not UTF-8."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidImportFile(f"The file is not UTF-8 text (invalid byte at offset {exc.start})") from None
    if not text.strip():
        raise InvalidImportFile("The file is empty")
    return text


def parse_rows(kind: ImportFormat, lines: Iterable[str]) -> Iterator[Parsed]:
    """Every row of a file given as lines of text (keeping their line ends, as a text file yields them)."""
    return csv_rows(lines) if kind == "csv" else jsonl_rows(lines)


# -- JSON lines ----------------------------------------------------------------------------------


def jsonl_row(line: int, text: str) -> Parsed | None:
    """One JSON line: a `/users/track` attributes object (None for a blank line)."""
    if not text.strip():
        return None
    try:
        obj = _json.decode(text)
    except msgspec.DecodeError:
        return Rejection(line, "not a valid JSON object")
    except RecursionError:  # the decoder's own guard: no attribute value nests this deep
        return Rejection(line, "not a valid JSON object: nested too deeply")
    if not isinstance(obj, dict):
        return Rejection(line, "each line must be a JSON object")
    try:
        target, update = parse_target(obj), parse_attributes(obj)
    except ValueError as exc:
        return Rejection(line, str(exc))
    return ImportRow(line, target, update, created_values(target, update))


def jsonl_rows(lines: Iterable[str]) -> Iterator[Parsed]:
    """The rows of a JSON lines file (blank lines are skipped)."""
    for number, text in enumerate(lines, 1):
        row = jsonl_row(number, text)
        if row is not None:
            yield row


# -- CSV -----------------------------------------------------------------------------------------

Convert = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class Column:
    """A CSV column: a standard field, a custom attribute (with its converter), an identifier or ignored."""

    name: str
    role: Literal["identifier", "standard", "custom", "ignored"]
    convert: Convert | None = None


@dataclass(frozen=True, slots=True)
class Layout:
    """What a CSV header says: its columns and how rows name their user."""

    columns: tuple[Column, ...]
    identifier: Literal["external_id", "braze_id", "user_alias"]

    def positions(self, role: str) -> list[tuple[int, str, Convert]]:
        """(index, name, converter) of each column in `role`."""
        return [(i, c.name, c.convert or str) for i, c in enumerate(self.columns) if c.role == role]

    def position(self, name: str) -> int:
        """The index of the column `name` (-1 when absent)."""
        return next((i for i, c in enumerate(self.columns) if c.name == name), -1)


def _declared(name: str, kind: str) -> Convert:
    if kind == "string":
        return lambda text: _string(text, name)
    if kind in ("integer", "int"):
        return lambda text: _integer(text, name)
    if kind in ("float", "number"):
        return lambda text: _number(text, name)
    if kind in ("boolean", "bool"):
        return lambda text: _boolean(text, name)
    return lambda text: _time(text, name)


def _string(text: str, name: str) -> str:
    if problem := text_problem(text, what=name, max_length=255, allow_empty=True):
        raise ValueError(problem)
    return text


def _integer(text: str, name: str) -> int:
    if not _INTEGER.match(text.strip()):
        raise ValueError(f"{name}: {text[:40]!r} is not an integer")
    return int(text)


def _number(text: str, name: str) -> float:
    value = text.strip()
    if not value or not _FLOAT.match(value) or value in "+-." or not any(c.isdigit() for c in value):
        raise ValueError(f"{name}: {text[:40]!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name}: {text[:40]!r} is not a finite number")
    return number


def _boolean(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"{name}: {text[:40]!r} is not true or false")
    return value == "true"


def _time(text: str, name: str) -> dict[str, str]:
    try:
        return {"$time": iso_time(parse_time(text))}
    except ValueError:
        raise ValueError(f"{name}: {text[:40]!r} is not an ISO-8601 date or date-time") from None


def infer(text: str, name: str) -> Any:
    """A cell's value typed as Braze's CSV import types it: boolean, integer, float, time or string."""
    lowered = text.lower()
    if lowered == "true" or lowered == "false":
        return lowered == "true"
    first = text[0]
    if first.isdigit() or first in "+-.":
        if _INTEGER.match(text):
            return int(text)
        if _FLOAT.match(text) and any(c.isdigit() for c in text):
            number = float(text)
            if math.isfinite(number):
                return number
    return parse_scalar(text, name)  # a time when it is an ISO-8601 date-time, else a string


def _inferred(name: str) -> Convert:
    return lambda text: infer(text, name)


#: Distinct values a column remembers the conversion of (its low-cardinality values: countries, plans…).
MEMO_SIZE = 4_096


def _column(cell: str) -> Column:
    name, _, kind = cell.strip().partition(":")
    name, kind = name.strip(), kind.strip().lower()
    if name in ("external_id", "braze_id", *ALIAS_COLUMNS):
        return Column(name, "identifier")
    if kind and kind not in DECLARED_TYPES:
        raise InvalidImportFile(
            f"Column {cell.strip()!r}: unknown type {kind!r}; use one of {', '.join(DECLARED_TYPES)}"
        )
    if name in STANDARD_FIELDS:
        if kind and kind != "string":
            raise InvalidImportFile(f"Column {cell.strip()!r}: {name} is a standard field, always a string")
        return Column(name, "standard", partial(parse_standard, name))
    if name in IGNORED_FIELDS:
        return Column(name, "ignored")
    if name in CONTROL_KEYS:
        raise InvalidImportFile(f"Column {name!r} is not supported in a CSV import; use JSON lines")
    try:
        check_custom_name(name)
    except ValueError as exc:
        raise InvalidImportFile(f"Column {cell.strip()[:80]!r}: {exc}") from None
    return Column(name, "custom", _declared(name, kind) if kind else _inferred(name))


def parse_header(cells: list[str]) -> Layout:
    """The layout a header row declares; `InvalidImportFile` naming the problem otherwise."""
    columns = tuple(_column(c) for c in cells)
    names = [c.name for c in columns]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise InvalidImportFile(f"Duplicate column(s): {', '.join(duplicates)[:200]}")
    kinds: list[Literal["external_id", "braze_id", "user_alias"]] = [
        k for k in ("external_id", "braze_id") if k in names
    ]
    aliases = [n for n in ALIAS_COLUMNS if n in names]
    if len(aliases) == 1:
        raise InvalidImportFile("user_alias_name and user_alias_label go together: the file has only one")
    if aliases:
        kinds.append("user_alias")
    if not kinds:
        raise InvalidImportFile(f"No identifier column: {IDENTIFIER_HINT}")
    if len(kinds) > 1:
        raise InvalidImportFile(
            f"A file names its users one way; it has {' and '.join(kinds)} columns (import them separately)"
        )
    return Layout(columns, kinds[0])


class RowReader:
    """Turns data rows into `ImportRow`s under one header's layout (positions resolved once).

    Each column remembers the conversions of its first `MEMO_SIZE` distinct values (a column repeats
    its values, and conversions are pure); the loops are inlined: a file has millions of cells.
    """

    def __init__(self, layout: Layout) -> None:
        self.width = len(layout.columns)
        self.identifier = layout.identifier
        self.standard: list[_Cells] = [(i, n, {}, c) for i, n, c in layout.positions("standard")]
        self.custom: list[_Cells] = [(i, n, {}, _set(c)) for i, n, c in layout.positions("custom")]
        names = ALIAS_COLUMNS if layout.identifier == "user_alias" else (layout.identifier,)
        self.ids = [(layout.position(n), n) for n in names]
        self.create = layout.identifier != "braze_id"

    def target(self, cells: list[str]) -> Target:
        """The user the row names; ValueError when its identifier cell is unusable."""
        for index, what in self.ids:
            if problem := text_problem(cells[index], what=what):
                raise ValueError(problem)
        if self.identifier == "user_alias":
            name, label = (cells[i] for i, _ in self.ids)
            return Target("user_alias", UserAlias(label=label, name=name), create=True)
        return Target(self.identifier, cells[self.ids[0][0]], create=self.create)

    def row(self, line: int, cells: list[str]) -> Parsed:
        """One data row."""
        if len(cells) != self.width:
            return Rejection(line, f"{len(cells)} values for {self.width} columns")
        try:
            update = AttributeUpdate(_converted(cells, self.standard), _converted(cells, self.custom))
            if self.identifier == "user_alias":
                return ImportRow(line, self.target(cells), update)
            index, what = self.ids[0]  # one identifier cell: checked here, the common case
            value = cells[index]
            if problem := text_problem(value, what=what):
                return Rejection(line, problem)
            target = Target(self.identifier, value, self.create)
            return ImportRow(line, target, update, created_values(target, update))
        except ValueError as exc:
            return Rejection(line, str(exc))


#: A column's index, name, remembered conversions and converter (never returning None).
_Cells = tuple[int, str, dict[str, Any], Convert]


def _converted(cells: list[str], columns: list[_Cells]) -> dict[str, Any]:
    """The non-empty cells of `columns`, converted; ValueError from the first that cannot be."""
    out: dict[str, Any] = {}
    for index, name, seen, convert in columns:
        text = cells[index]
        if text:
            value = seen.get(text)
            if value is None:
                value = convert(text)  # a ValueError is not remembered: it is raised again next time
                if len(seen) < MEMO_SIZE:  # values are shared: a stored value is never changed in place
                    seen[text] = value
            out[name] = value
    return out


def _set(convert: Convert) -> Callable[[str], CustomOp]:
    return lambda text: SetValue(convert(text))


def csv_rows(lines: Iterable[str]) -> Iterator[Parsed]:
    """The rows of a CSV file: the header first (`InvalidImportFile` when it is unusable), then each row."""
    reader = csv.reader(iter(lines), strict=True)
    rows_of: RowReader | None = None
    last = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if rows_of is None:
                raise InvalidImportFile(f"The header row is not valid CSV: {exc}") from None
            yield Rejection(last + 1, f"not valid CSV: {exc}")
            last = reader.line_num
            continue
        line, last = last + 1, reader.line_num
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # a blank line
        if rows_of is None:
            rows_of = RowReader(parse_header(cells))
        else:
            yield rows_of.row(line, cells)
    if rows_of is None:
        raise InvalidImportFile("The file is empty")
