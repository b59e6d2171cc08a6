"""Query parameters: one parser for the whole API; a bad value is a 400 naming the parameter.

Integers are ASCII digits only (`str.isdigit` also accepts "²" and "٣", which `int` refuses)
and at most 19 of them, so every accepted value fits a signed 64-bit integer. Before any route
runs, `StorableUrl` refuses a path or query parameter that no store can hold (NUL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from cohorthub.api.errors import error_response
from cohorthub.clock import parse_iso
from cohorthub.errors import InvalidInput
from cohorthub.text import storable_problem

MAX_DIGITS = 19
MAX_CURSOR = 2**32 - 1  # cursors are user numbers, which membership bitmaps hold as 32-bit integers


class InvalidParameter(InvalidInput):
    """A query parameter breaks its rule; the message and `errors` name it."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"Query parameter `{name}` {problem}", errors=[f"{name}: {problem}"])
        self.name = name


def integer_schema(low: int, high: int) -> dict[str, Any]:
    """The OpenAPI schema of what `integer` accepts."""
    return {"type": "integer", "minimum": low, "maximum": high}


#: The OpenAPI schema of what `cursor` accepts.
CURSOR_SCHEMA: dict[str, Any] = {"type": "string", "pattern": "^[0-9]{0,10}$", "maxLength": 10}


def is_digits(text: str, max_digits: int = MAX_DIGITS) -> bool:
    """Whether `text` is 1 to `max_digits` ASCII digits ("²" is a digit to `str.isdigit`, not here)."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def integer(query: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    """`name` as an integer from `low` to `high` (`default` when absent)."""
    text = query.get(name)
    if text is None:
        return default
    if not is_digits(text) or not low <= int(text) <= high:
        raise InvalidParameter(name, f"must be an integer from {low} to {high}")
    return int(text)


def cursor(query: Mapping[str, str], name: str = "cursor") -> int | None:
    """A `next_cursor` handed out by a paging endpoint (None when absent or empty)."""
    text = query.get(name)
    if not text:
        return None
    if not is_digits(text) or int(text) > MAX_CURSOR:
        raise InvalidParameter(name, "must be a `next_cursor` returned by this endpoint")
    return int(text)


def choice(query: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    """`name` as one of `allowed` (the first one when absent)."""
    text = query.get(name, allowed[0])
    if text not in allowed:
        raise InvalidParameter(name, f"must be one of: {', '.join(allowed)}")
    return text


def required(query: Mapping[str, str], name: str) -> str:
    """A non-empty `name`."""
    text = query.get(name) or ""
    if not text:
        raise InvalidParameter(name, "is required")
    return text


def moment(query: Mapping[str, str], name: str, *, optional: bool = False) -> float | None:
    """`name` as an ISO-8601 date or date-time (UTC when no offset) in Unix seconds; None if optional."""
    text = query.get(name) or ""
    if not text and optional:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        raise InvalidParameter(name, "must be an ISO-8601 date or date-time from year 1 to 9999") from None


class StorableUrl:
    """ASGI middleware: a path or query parameter that no store can hold is a 400, identical on both."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 400 for a NUL in the path or the query, else pass the request on."""
        if scope["type"] == "http" and (error := url_error(scope)) is not None:
            await error_response(error, scope.get("state", {}).get("request_id"))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def url_error(scope: Scope) -> InvalidInput | None:
    """The error for the first unstorable part of the request's path or query string, if any."""
    if problem := storable_problem(scope["path"]):
        return InvalidInput(f"The path {problem}", errors=[f"path: {problem}"])
    query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
    for name, value in query.multi_items():
        if problem := storable_problem(name) or storable_problem(value):
            return InvalidParameter(name.replace("\x00", "\\x00"), problem)
    return None
