"""`matches_regex` runs on RE2: time linear in the text, whatever the pattern.

Python's `re` backtracks, so `^(a+)+$` over 30 characters takes minutes. RE2 refuses the
constructs that need backtracking (backreferences, lookaround, atomic groups) and counted
repetitions over 1,000; `regex_problem` reports them at definition. docs/segments.md
documents the dialect.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import re2

MAX_REGEX_LENGTH = 512
_MAX_PROGRAM_BYTES = 1 << 20  # RE2's memory budget for one compiled pattern


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.never_capture = True  # `search` only says whether the text matches
    options.max_mem = _MAX_PROGRAM_BYTES
    return options


_OPTIONS = _options()


def regex_problem(pattern: str) -> str | None:
    """Why RE2 cannot run `pattern` (e.g. "is not a valid RE2 regex: invalid perl operator: (?="), or None."""
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"a regex may be at most {MAX_REGEX_LENGTH} characters"
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        detail = (
            exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        )
        return f"is not a valid RE2 regex: {detail}"
    return None


@lru_cache(maxsize=256)
def regex_search(pattern: str) -> Callable[[str], bool]:
    """A test whether `pattern` matches anywhere in a text (a pattern RE2 refuses matches nothing)."""
    if regex_problem(pattern) is not None:
        return lambda _text: False
    compiled = re2.compile(pattern, _OPTIONS)
    return lambda text: compiled.search(text) is not None
