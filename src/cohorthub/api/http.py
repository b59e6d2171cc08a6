"""Small HTTP helpers shared by the route modules: JSON in and out, threads, keys."""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cohorthub.bootstrap import Container
from cohorthub.errors import (
    DeadlockVictim,
    InvalidInput,
    PayloadTooLarge,
    UnsupportedEncoding,
    UnsupportedMediaType,
)

T = TypeVar("T")
#: Arrays and objects nest at most this deep in a request body (a filter tree needs 2 per level).
MAX_JSON_DEPTH = 64
#: Bodies up to this size are decoded on the event loop; larger ones in a worker thread.
INLINE_DECODE_BYTES = 64 * 1024
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class JSONResponse(Response):
    """A response whose body is encoded by msgspec."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def container(request: Request) -> Container:
    """The composition root attached to the app."""
    c = request.app.state.container
    assert isinstance(c, Container)
    return c


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


#: Content-Encodings a request body may use, with the `wbits` zlib reads each with (gzip, or the zlib
#: stream RFC 9110 calls "deflate"; 47 also takes a gzip stream sent as "deflate").
_DECODERS = {"gzip": 31, "x-gzip": 31, "deflate": 47}
#: What a 415 for another coding names (its `Accept-Encoding`).
_ACCEPTED = "gzip, deflate"


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is larger than the limit of {max_bytes} bytes")


def body_encoding(header: str) -> str | None:
    """The one content coding of a `Content-Encoding` header (None: the body is as sent); 415 otherwise."""
    if not header:  # nearly every request
        return None
    codings = [c for c in (part.strip().lower() for part in header.split(",")) if c and c != "identity"]
    if not codings:
        return None
    if len(codings) > 1 or codings[0] not in _DECODERS:
        shown = header.strip()[:64]
        raise UnsupportedEncoding(
            f"Content-Encoding {shown!r} is not supported: send the body as {_ACCEPTED} or as is",
            accepted=_ACCEPTED,
        )
    return codings[0]


class BodyDecompressor:
    """A compressed body decoded as it arrives, never past `max_bytes` of output: a small body that
    inflates without end is refused at the limit, not held in memory."""

    def __init__(self, coding: str, max_bytes: int) -> None:
        self._coding = coding
        self._wbits = _DECODERS[coding]
        self._z = zlib.decompressobj(self._wbits)
        self._max = max_bytes
        self._size = 0
        self._open = False  # a stream has begun and not ended

    def feed(self, data: bytes) -> list[bytes]:
        """What `data` decompresses to; 413 past the limit, 400 when it is not a valid stream."""
        out: list[bytes] = []
        while data:
            self._open = True
            try:
                piece = self._z.decompress(data, self._max - self._size + 1)
            except zlib.error:
                raise self._invalid("it is not a valid stream") from None
            self._size += len(piece)
            if self._size > self._max:
                raise _too_large(self._max)
            out.append(piece)
            if self._z.eof:  # gzip allows several members, one after another
                self._open = False
                data = self._z.unused_data
                self._z = zlib.decompressobj(self._wbits)
            else:
                data = self._z.unconsumed_tail
        return out

    def finish(self) -> None:
        """400 when the body ended inside a stream (cut short)."""
        if self._open:
            raise self._invalid("it ends before its stream does")

    def _invalid(self, why: str) -> InvalidInput:
        return InvalidInput(f"Request body is not valid {self._coding} ({why})")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refusing anything over `max_bytes` before reading it all.

    A body sent with `Content-Encoding: gzip` or `deflate` is decompressed as it arrives (in a worker
    thread), and the limit applies to both what was sent and what it decompresses to.
    """
    coding = body_encoding(request.headers.get("content-encoding", ""))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    inflate = BodyDecompressor(coding, max_bytes) if coding else None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        if inflate is None:
            chunks.append(chunk)
        else:  # off the event loop: a few bytes may inflate to megabytes
            chunks += await in_thread(partial(inflate.feed, chunk))
    if inflate is not None:
        inflate.finish()
    return b"".join(chunks)


async def read_json(request: Request) -> Any:
    """The decoded JSON body (any JSON value); 415, 413 or 400 when it is not usable JSON."""
    if not _is_json(request.headers.get("content-type", "")):
        raise UnsupportedMediaType("Content-Type must be application/json")
    body = await read_body(request, container(request).settings.max_body_bytes)
    if len(body) <= INLINE_DECODE_BYTES:  # tens of microseconds: less than the hop to a thread
        return decode_json(body)
    return await in_thread(lambda: decode_json(body))


def decode_json(body: bytes) -> Any:
    """Decode a JSON body nested at most `MAX_JSON_DEPTH` arrays and objects deep; 400 otherwise."""
    try:
        value = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"Request body is not valid JSON: {exc}") from exc
    except RecursionError:  # the decoder's own guard, far deeper than the limit
        raise _too_deep() from None
    # Only a body with more brackets than the limit can nest deeper (counting runs at C speed).
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and nested_deeper_than(body, MAX_JSON_DEPTH):
        raise _too_deep()
    return value


def _too_deep() -> InvalidInput:
    return InvalidInput(f"Request body is not valid JSON: nested deeper than {MAX_JSON_DEPTH} levels")


#: Every byte but quotes and brackets (what the nesting depth is read from).
_NOT_QUOTE_OR_BRACKET = bytes(b for b in range(256) if b not in b'"[]{}')
#: A string once only quotes and brackets are left of the text.
_STRING = re.compile(rb'"[^"]*"')
#: An array or object with no array or object inside (what is left once strings and scalars are gone).
_INNERMOST = re.compile(rb"\[\]|\{\}")


def nested_deeper_than(text: bytes, limit: int) -> bool:
    """Whether the arrays and objects of valid JSON `text` nest more than `limit` deep.

    Read from the text rather than the decoded value (walking every decoded node cost more than
    decoding): escaped backslashes and quotes go, then everything but quotes and brackets, then the
    strings (and any brackets in them); each round then removes the innermost pairs, one level of
    nesting. Every step runs at C speed.
    """
    text = text.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_QUOTE_OR_BRACKET)
    text = text.replace(b'""', b"")  # empty strings (and two strings with no bracket between)
    if b'"' in text:
        text = _STRING.sub(b"", text)
    for _ in range(limit):
        if not text:
            return False
        text = _INNERMOST.sub(b"", text)
    return bool(text)


def decode_as(value: Any, type_: type[T]) -> T:
    """Convert decoded JSON into a wire type; 400 naming the offending field otherwise."""
    try:
        return msgspec.convert(value, type_)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from exc


def api_key(request: Request, body: Any) -> str | None:
    """The REST API key: `Authorization: Bearer KEY`, else the legacy `api_key` body field."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if isinstance(body, dict):
        legacy = body.get("api_key")
        if isinstance(legacy, str) and legacy:
            return legacy
    return None


async def in_thread(fn: Callable[[], T]) -> T:
    """Run blocking work (SQL) off the event loop."""
    return await anyio.to_thread.run_sync(fn)


#: How many times a write runs when PostgreSQL picks its transaction to break a deadlock.
DEADLOCK_ATTEMPTS = 3


async def write_in_thread(fn: Callable[[], T]) -> T:
    """`in_thread` for a write that is one transaction: run again when it was a deadlock's victim.

    Writers of different users lock rows in different orders (a track request its users, an import
    the cohort's members), and PostgreSQL breaks a cycle by rolling one transaction back whole;
    nothing of it was written or acknowledged, so it runs again (`DEADLOCK_ATTEMPTS` in all).
    """
    for _ in range(DEADLOCK_ATTEMPTS - 1):
        try:
            return await anyio.to_thread.run_sync(fn)
        except DeadlockVictim:
            continue
    return await anyio.to_thread.run_sync(fn)
