"""Human output that fits the terminal without ever cutting a value: tables when they fit, else records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

GAP = "  "


def cell(value: Any) -> str:
    """A value as shown to a human (`-` for nothing)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def record_lines(row: dict[str, Any]) -> list[str]:
    """One item as `key  value` lines, keys aligned; values are never cut."""
    width = max((len(k) for k in row), default=0)
    return [f"{k.ljust(width)}{GAP}{cell(v)}" for k, v in row.items()]


def table_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Rows as an aligned table with a header (columns: the first row's keys)."""
    columns = list(rows[0])
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = [GAP.join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append(GAP.join("-" * w for w in widths))
    lines.extend(GAP.join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells)
    return lines


def render(data: dict[str, Any] | Sequence[dict[str, Any]], *, width: int, title: str = "") -> list[str]:
    """One item as a record; several as a table when it fits `width`, else as records."""
    if isinstance(data, dict):
        return ([title] if title else []) + record_lines(data)
    head = [f"{title} ({len(data)})"] if title else []
    if not data:
        return [*head, "(none)"]
    table = table_lines(data)
    if max(len(line) for line in table) <= width:
        return head + table
    lines = list(head)
    for row in data:
        lines.extend(["", *record_lines(row)])
    return lines
