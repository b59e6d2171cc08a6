"""The one rule for text that reaches storage: what both SQLite and PostgreSQL can hold alike.

PostgreSQL refuses NUL in `text` columns and parameters while SQLite stores it, so a string
with NUL would be a 500 on one store and silently kept on the other: every store refuses it
up front. A lone surrogate cannot be encoded as UTF-8 on either.
"""

from __future__ import annotations

from typing import Any


def unstorable_path(value: Any, path: str) -> tuple[str, str] | None:
    """The path of the first string (or object key) in a JSON value that cannot be stored, and why."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if problem := storable_problem(node):
                return where, problem
        elif isinstance(node, dict):
            for key, child in node.items():
                if isinstance(key, str) and (problem := storable_problem(key)):
                    return f"{where} key", problem
                stack.append((child, f"{where}.{key}"))
        elif isinstance(node, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(node))
    return None


def storable_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text (e.g. "must not contain NUL characters"), or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode"
    return None
