"""Braze-style Liquid on python-liquid (pure: a template and values in, text out).

Braze writes attribute paths as `${name}`: `{{${first_name} | default: 'there'}}`,
`{{custom_attribute.${plan}}}`, `{% if ${language} == 'en' %}`. Before parsing, each `${name}`
becomes the bare variable `name` and each `.${key}` becomes `["key"]`, both padded to the same
length so that a syntax error's line and column point into the text the author wrote.
`{% abort_message('reason') %}` stops the message for that user.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TextIO

import liquid
from liquid import ast
from liquid.exceptions import LiquidError
from liquid.stream import TokenStream
from liquid.token import TOKEN_EXPRESSION, TOKEN_TAG

from cohorthub.messaging.errors import InvalidTemplate

_PATH = re.compile(r"(\.)?\$\{([^}\n]*)\}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_ABORT_BARE = re.compile(r"\{%(-?)\s*abort_message\s*(?:\(\s*\))?\s*(-?)%\}")


class MessageAborted(Exception):
    """`{% abort_message %}` ran: nothing is sent to this user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RenderFailed(Exception):
    """The template failed while rendering for one user (e.g. an unknown filter)."""


class _AbortNode(ast.Node):
    __slots__ = ("reason",)

    def __init__(self, token: Any, reason: str) -> None:
        super().__init__(token)
        self.reason = reason

    def __str__(self) -> str:
        return f"{{% abort_message('{self.reason}') %}}"

    def render_to_output(self, context: Any, buffer: TextIO) -> int:
        raise MessageAborted(self.reason or "{% abort_message %} called")


class _AbortTag(liquid.Tag):
    name = "abort_message"
    block = False

    def parse(self, stream: TokenStream) -> ast.Node:
        token = stream.eat(TOKEN_TAG)
        raw = stream.current.value if stream.current.kind == TOKEN_EXPRESSION else ""
        reason = raw.strip().removeprefix("(").removesuffix(")").strip().strip("'\"")
        return _AbortNode(token, reason)


#: Bounds of one render: loop iterations (all loops together) and characters of output. A message is
#: rendered once per recipient, so a template that loops for seconds would stall every send after it.
LOOP_ITERATION_LIMIT = 100_000
OUTPUT_LIMIT = 2_000_000


#: The largest number a filter may take or make (Python cannot even write a longer one as text).
INTEGER_LIMIT = 10**4300


class ValueTooLarge(LiquidError):
    """A filter was given, or made, a value larger than a render's bounds."""


def _too_large(value: object) -> bool:
    """Whether `value` is a string longer than the output bound, a sequence longer than the loop bound,
    or a number past `INTEGER_LIMIT`: a filter over it would take seconds and gigabytes."""
    if isinstance(value, str):
        return len(value) > OUTPUT_LIMIT
    if isinstance(value, int):
        return not -INTEGER_LIMIT < value < INTEGER_LIMIT
    return isinstance(value, Sized) and len(value) > LOOP_ITERATION_LIMIT


class _BoundedContext(liquid.RenderContext):
    """Filters bounded like loops and output: a sorted or joined range of millions, a string appended to
    itself or a number multiplied by itself in a loop, fail at once instead of growing without end."""

    def filter(self, name: str, token: Any) -> Callable[..., object]:
        func = super().filter(name, token)

        def bounded(left: object, *args: object, **kwargs: object) -> object:
            if any(_too_large(v) for v in (left, *args, *kwargs.values())):
                raise ValueTooLarge(f"{name}: value too large", token=token)
            result = func(left, *args, **kwargs)
            if _too_large(result):
                raise ValueTooLarge(f"{name}: result too large", token=token)
            return result

        return bounded


class _BoundedTemplate(liquid.BoundTemplate):
    context_class = _BoundedContext


class _Environment(liquid.Environment):
    loop_iteration_limit = LOOP_ITERATION_LIMIT
    output_stream_limit = OUTPUT_LIMIT
    template_class = _BoundedTemplate


def _environment() -> liquid.Environment:
    env = _Environment(undefined=liquid.Undefined)
    env.add_tag(_AbortTag)
    return env


_ENV = _environment()


def translate(source: str) -> str:
    """Braze path syntax to plain Liquid, keeping every other character where it was."""

    def path(match: re.Match[str]) -> str:
        dotted, key = match.group(1), match.group(2)
        if dotted:
            return '["' + key.replace('"', "'") + '"]'
        if not _IDENTIFIER.fullmatch(key):
            return '["' + key.replace('"', "'") + '"]'
        return "  " + key + " "

    source = _ABORT_BARE.sub(lambda m: "{%" + m.group(1) + " abort_message('') " + m.group(2) + "%}", source)
    return _PATH.sub(path, source)


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template (compile once, render per user)."""

    source: str
    compiled: Any

    def render(self, values: Mapping[str, Any]) -> str:
        """The text for one user; `MessageAborted` or `RenderFailed` when it cannot be sent."""
        try:
            return str(self.compiled.render(**values))
        except MessageAborted:
            raise
        except LiquidError as exc:
            raise RenderFailed(_position_message(self.source, exc)) from exc
        except Exception as exc:  # a filter's own error (python-liquid raises plain Python errors too)
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, MessageAborted):
                raise cause from None
            raise RenderFailed(str(exc)) from exc


@lru_cache(maxsize=512)
def _compile(source: str) -> tuple[Any, tuple[int, str] | None]:
    """The parsed template and, when it names an unknown filter, (offset, reason); cached by source."""
    compiled = _ENV.from_string(translate(source))
    for name, spans in compiled.analyze().filters.items():
        if name not in _ENV.filters:
            return compiled, (spans[0].index, f"unknown filter '{name}'")
    return compiled, None


def compile_template(source: str, *, path: str) -> Template:
    """Parse `source`; `InvalidTemplate` naming `path`, line and column when it is not valid Liquid."""
    try:
        compiled, problem = _compile(source)
    except LiquidError as exc:
        line, column = _position(source, exc)
        raise InvalidTemplate(path, line, column, _reason(exc)) from exc
    if problem is not None:
        line, column = _line_column(source, problem[0])
        raise InvalidTemplate(path, line, column, problem[1])
    return Template(source, compiled)


def _position(source: str, exc: LiquidError) -> tuple[int, int]:
    token = getattr(exc, "token", None)
    index = getattr(token, "start_index", -1) if token is not None else -1
    if index is None or index < 0:
        return 1, 1
    return _line_column(source, index)


def _line_column(source: str, index: int) -> tuple[int, int]:
    before = source[:index]
    line = before.count("\n") + 1
    return line, index - (before.rfind("\n") + 1) + 1


def _reason(exc: LiquidError) -> str:
    return str(getattr(exc, "message", None) or str(exc).splitlines()[0])


def _position_message(source: str, exc: LiquidError) -> str:
    line, column = _position(source, exc)
    return f"line {line}, column {column}: {_reason(exc)}"
