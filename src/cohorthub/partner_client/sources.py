"""Membership sources: CSV/TSV, JSON lines, SQL queries and plain iterables.

Every source yields batches of ``(namespace, [identifier bytes])``: identifiers are stripped,
empty ones dropped, and the namespace is ``external_id``, ``device_id`` or ``alias:LABEL``.
A source may mix id types: a column (header ``id_type,id``) or a JSON field says which.
Duplicates are allowed here; the diff removes them. SQLAlchemy is imported only by ``SqlSource``.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from .errors import SourceError
from .model import DEVICE_ID, EXTERNAL_ID, parse_namespace

Batch = tuple[str, list[bytes]]
BATCH_SIZE = 100_000
BLOCK_SIZE = 4 << 20
_ID_COLUMNS = {"id", "identifier", "value", "external_id", "user_id", "device_id", "alias_name"}
_TYPE_COLUMNS = {"id_type", "type", "identifier_type"}
_BOM = codecs.BOM_UTF8


class Source(Protocol):
    """Anything that yields the current membership in batches."""

    def batches(self) -> Iterator[Batch]:
        """Yield ``(namespace, identifiers)`` batches."""
        ...


class _Grouper:
    """Collects (namespace, identifier) pairs and hands out per-namespace batches."""

    def __init__(self, where: str, batch_size: int = BATCH_SIZE) -> None:
        self._where = where
        self._batch_size = batch_size
        self._groups: dict[str, list[bytes]] = {}
        self._count = 0
        self._namespaces: dict[str, str] = {}

    def namespace(self, raw: str, line: int | None = None) -> str:
        """Parse an id type (cached), naming the position on error."""
        found = self._namespaces.get(raw)
        if found is None:
            try:
                found = self._namespaces[raw] = parse_namespace(raw)
            except ValueError as exc:
                at = f"{self._where}:{line}" if line is not None else self._where
                raise SourceError(f"{at}: {exc}") from exc
        return found

    def add(self, namespace: str, value: str, line: int | None = None) -> None:
        """Add one identifier (stripped; empty ones are skipped)."""
        ident = value.strip()
        if not ident:
            return
        if "\n" in ident or "\r" in ident:
            at = f"{self._where}:{line}" if line is not None else self._where
            raise SourceError(f"{at}: identifiers cannot contain line breaks: {ident[:60]!r}")
        self._groups.setdefault(namespace, []).append(ident.encode())
        self._count += 1

    def full(self) -> bool:
        """Enough for a batch."""
        return self._count >= self._batch_size

    def drain(self) -> Iterator[Batch]:
        """Hand out everything collected so far."""
        groups, self._groups, self._count = self._groups, {}, 0
        yield from groups.items()


class IterableSource:
    """Identifiers from memory: strings (of ``id_type``) or ``(id_type, identifier)`` pairs."""

    def __init__(self, items: Iterable[str | tuple[str, str]], *, id_type: str = EXTERNAL_ID) -> None:
        self._items = items
        self._namespace = parse_namespace(id_type)

    def batches(self) -> Iterator[Batch]:
        """Yield batches of the items."""
        grouper = _Grouper("items")
        for item in self._items:
            if isinstance(item, str):
                grouper.add(self._namespace, item)
            else:
                grouper.add(grouper.namespace(item[0]), item[1])
            if grouper.full():
                yield from grouper.drain()
        yield from grouper.drain()


class DelimitedSource:
    """A CSV or TSV file: one identifier column, or ``id_type`` and ``id`` columns; header optional.

    A header is recognised by its column names (``id``, ``external_id``, ``device_id``,
    ``id_type``...). Single-column files without quotes take a fast path that runs in C.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        id_type: str = EXTERNAL_ID,
        delimiter: str | None = None,
        header: bool | None = None,
    ) -> None:
        self._path = Path(path)
        self._namespace = parse_namespace(id_type)
        suffix = self._path.suffix.lower()
        self._delimiter = delimiter or ("\t" if suffix in {".tsv", ".tab"} else None)
        self._header = header

    def batches(self) -> Iterator[Batch]:
        """Yield batches of the file's identifiers."""
        try:
            with self._path.open("rb") as file:
                yield from self._read(file)
        except OSError as exc:
            raise SourceError(f"cannot read {self._path}: {exc}") from exc

    def _read(self, file: Any) -> Iterator[Batch]:
        block: bytes = file.read(BLOCK_SIZE)
        if block.startswith(_BOM):
            block = block[len(_BOM) :]
        first_line = _decode(block.split(b"\n", 1)[0], self._path).rstrip("\r")
        delimiter = self._delimiter or ("\t" if "\t" in first_line else ",")
        cells = next(csv.reader([first_line], delimiter=delimiter), [])
        has_header = self._header if self._header is not None else _looks_like_header(cells)
        type_col, id_col, namespace = self._layout(cells if has_header else [], len(cells))
        if has_header:
            block = block.split(b"\n", 1)[1] if b"\n" in block else b""
        if type_col is None:
            yield from self._single_column(file, block, delimiter, namespace, 1 + int(has_header))
        else:
            text = _chain_text(block, file, self._path)
            yield from self._typed_rows(text, delimiter, type_col, id_col, 1 + int(has_header))

    def _layout(self, header: Sequence[str], width: int) -> tuple[int | None, int, str]:
        names = [cell.strip().lower() for cell in header]
        if not names:
            return (0, 1, self._namespace) if width == 2 else (None, 0, self._namespace)
        type_col = next((i for i, name in enumerate(names) if name in _TYPE_COLUMNS), None)
        id_col = next((i for i, name in enumerate(names) if name in _ID_COLUMNS), None)
        if id_col is None:
            if len(names) != 1:
                raise SourceError(f"{self._path}: no identifier column in header {list(header)}")
            id_col = 0
        namespace = {"device_id": DEVICE_ID, "external_id": EXTERNAL_ID, "user_id": EXTERNAL_ID}.get(
            names[id_col], self._namespace
        )
        return type_col, id_col, namespace

    def _single_column(
        self, file: Any, block: bytes, delimiter: str, namespace: str, first_line: int
    ) -> Iterator[Batch]:
        rest = b""
        line = first_line
        separator = delimiter.encode()
        while block or rest:
            data = rest + block
            block = file.read(BLOCK_SIZE)
            lines = data.split(b"\n")
            rest = lines.pop() if block else b""
            _decode(data, self._path)
            if b'"' in data or separator in data:
                yield from self._quoted_block(lines, delimiter, namespace, line)
            else:
                trimmed = lines if _no_padding(data) else map(bytes.strip, lines)
                ids = list(filter(None, trimmed))
                if ids:
                    yield namespace, ids
            line += len(lines)

    def _quoted_block(
        self, lines: list[bytes], delimiter: str, namespace: str, first: int
    ) -> Iterator[Batch]:
        grouper = _Grouper(str(self._path))
        text = (raw.rstrip(b"\r").decode() for raw in lines)
        for offset, row in enumerate(csv.reader(text, delimiter=delimiter)):
            if len(row) > 1:
                raise SourceError(f"{self._path}:{first + offset}: expected one column, got {len(row)}")
            if row:
                grouper.add(namespace, row[0], first + offset)
        yield from grouper.drain()

    def _typed_rows(
        self, text: Iterator[str], delimiter: str, type_col: int, id_col: int, first: int
    ) -> Iterator[Batch]:
        grouper = _Grouper(str(self._path))
        reader = csv.reader(text, delimiter=delimiter)
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            line = first + reader.line_num - 1
            if len(row) <= max(type_col, id_col):
                raise SourceError(f"{self._path}:{line}: expected an id type and an identifier, got {row}")
            grouper.add(grouper.namespace(row[type_col], line), row[id_col], line)
            if grouper.full():
                yield from grouper.drain()
        yield from grouper.drain()


class JsonLinesSource:
    """JSON lines: a string per line (of ``id_type``), or an object such as ``{"id_type": "device_id",
    "id": "d1"}``, ``{"external_id": "u1"}``, ``{"device_id": "d1"}`` or
    ``{"alias_label": "email", "alias_name": "a@x.com"}``."""

    def __init__(self, path: str | Path, *, id_type: str = EXTERNAL_ID) -> None:
        self._path = Path(path)
        self._namespace = parse_namespace(id_type)

    def batches(self) -> Iterator[Batch]:
        """Yield batches of the file's identifiers."""
        grouper = _Grouper(str(self._path))
        try:
            with self._path.open(encoding="utf-8-sig") as file:
                for number, line in enumerate(file, start=1):
                    if line.strip():
                        self._add(grouper, line, number)
                        if grouper.full():
                            yield from grouper.drain()
        except OSError as exc:
            raise SourceError(f"cannot read {self._path}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise SourceError(f"{self._path}: not UTF-8: {exc}") from exc
        yield from grouper.drain()

    def _add(self, grouper: _Grouper, line: str, number: int) -> None:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{self._path}:{number}: invalid JSON: {exc}") from exc
        if isinstance(value, str):
            grouper.add(self._namespace, value, number)
            return
        if isinstance(value, dict):
            pair = _pair_from_object(value)
            if pair is not None:
                grouper.add(grouper.namespace(pair[0], number), pair[1], number)
                return
        raise SourceError(
            f"{self._path}:{number}: expected a string or an identifier object, got {line[:80]!r}"
        )


def _pair_from_object(value: dict[str, Any]) -> tuple[str, str] | None:
    if isinstance(value.get("id_type"), str) and isinstance(value.get("id"), str | int):
        return value["id_type"], str(value["id"])
    if isinstance(value.get("alias_label"), str) and isinstance(value.get("alias_name"), str):
        return "alias:" + value["alias_label"], value["alias_name"]
    for key in ("external_id", "user_id", "device_id"):
        if isinstance(value.get(key), str | int):
            return key, str(value[key])
    return None


class SqlSource:
    """A SQL query through SQLAlchemy (any URL it supports); one column of identifiers, or two
    (``id_type``, ``id``). Needs the optional ``sqlalchemy`` dependency and the URL's driver."""

    def __init__(self, url: str, query: str, *, id_type: str = EXTERNAL_ID, batch_size: int = 50_000) -> None:
        self._url = url
        self._query = query
        self._namespace = parse_namespace(id_type)
        self._batch_size = batch_size

    def batches(self) -> Iterator[Batch]:
        """Run the query and yield batches of its rows."""
        try:
            import sqlalchemy
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise SourceError("SQL sources need SQLAlchemy: pip install sqlalchemy") from exc
        try:
            engine = sqlalchemy.create_engine(self._url)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
            raise SourceError(f"cannot use database URL: {exc}") from exc
        try:
            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True).execute(sqlalchemy.text(self._query))
                yield from self._rows(list(result.keys()), result.partitions(self._batch_size))
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise SourceError(f"query failed: {exc}") from exc
        finally:
            engine.dispose()

    def _rows(self, columns: list[str], partitions: Iterable[Sequence[Sequence[Any]]]) -> Iterator[Batch]:
        names = [name.lower() for name in columns]
        if len(names) == 1:
            type_col = None
        elif len(names) == 2:
            type_col = names.index("id_type") if "id_type" in names else 0
        else:
            raise SourceError(f"the query must return one column (id) or two (id_type, id), got {columns}")
        id_col = 1 - type_col if type_col is not None else 0
        grouper = _Grouper("query")
        for rows in partitions:
            for row in rows:
                if row[id_col] is None:
                    continue
                namespace = self._namespace if type_col is None else grouper.namespace(str(row[type_col]))
                grouper.add(namespace, str(row[id_col]))
            yield from grouper.drain()


def open_file_source(path: str | Path, *, id_type: str = EXTERNAL_ID) -> Source:
    """A source for a file, chosen by extension (``.jsonl``/``.ndjson`` JSON lines, else CSV/TSV)."""
    suffix = Path(path).suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return JsonLinesSource(path, id_type=id_type)
    return DelimitedSource(path, id_type=id_type)


def _no_padding(data: bytes) -> bool:
    """No spaces, tabs, carriage returns or other ASCII padding: lines need no trimming."""
    return not any(pad in data for pad in (b" ", b"\r", b"\t", b"\x0b", b"\x0c"))


def _looks_like_header(cells: Sequence[str]) -> bool:
    names = {cell.strip().lower() for cell in cells}
    return bool(names) and names <= (_ID_COLUMNS | _TYPE_COLUMNS | {"alias_label"})


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3 and exc.reason == "unexpected end of data":
            return data[: exc.start].decode("utf-8")
        raise SourceError(f"{path}: not UTF-8 near byte {exc.start}: {exc.reason}") from exc


def _chain_text(block: bytes, file: Any, path: Path) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending = ""
    while True:
        try:
            pending += decoder.decode(block, final=not block)
        except UnicodeDecodeError as exc:
            raise SourceError(f"{path}: not UTF-8: {exc.reason}") from exc
        lines = pending.split("\n")
        pending = lines.pop()
        yield from (line + "\n" for line in lines)
        if not block:
            break
        block = file.read(BLOCK_SIZE)
    if pending:
        yield pending
