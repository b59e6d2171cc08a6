"""The one rule for text that reaches storage: what both SQLite and PostgreSQL can hold alike.

PostgreSQL refuses NUL in `text` columns and parameters while SQLite stores it, so a string
with NUL would be a 500 on one store and silently kept on the other: every store refuses it
up front. A lone surrogate cannot be encoded as UTF-8 on either.
"""

from __future__ import annotations


def storable_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text (e.g. "must not contain NUL characters"), or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode"
    return None
