"""Compressed request bodies: which Content-Encodings are read, and how a stream is decoded and bounded."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cohorthub.api.http import BodyDecompressor, body_encoding
from cohorthub.errors import InvalidInput, PayloadTooLarge, UnsupportedEncoding


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        ("", None),
        ("identity", None),
        (" GZIP ", "gzip"),
        ("x-gzip", "x-gzip"),
        ("deflate", "deflate"),
        ("identity, gzip", "gzip"),
    ],
)
def test_the_codings_read(header: str, coding: str | None) -> None:
    assert body_encoding(header) == coding


@pytest.mark.parametrize("header", ["br", "zstd", "compress", "gzip, gzip", "gzip, deflate", "x" * 500])
def test_other_codings_are_415_naming_them_briefly(header: str) -> None:
    with pytest.raises(UnsupportedEncoding) as caught:
        body_encoding(header)
    assert caught.value.status == 415
    assert caught.value.message.startswith(f"Content-Encoding {header[:64]!r} is not supported")
    assert len(caught.value.message) < 150


def _inflate(coding: str, body: bytes, chunk: int, limit: int = 1 << 20) -> bytes:
    d = BodyDecompressor(coding, limit)
    out = b"".join(b"".join(d.feed(body[i : i + chunk])) for i in range(0, len(body), chunk))
    d.finish()
    return out


@given(st.binary(max_size=5000), st.integers(1, 300), st.integers(1, 3))
def test_any_body_gzip_in_any_chunks_and_members_comes_back(data: bytes, chunk: int, members: int) -> None:
    body = b"".join(gzip.compress(data) for _ in range(members))
    assert _inflate("gzip", body, chunk) == data * members


@given(st.binary(max_size=5000), st.integers(1, 300))
def test_deflate_takes_a_zlib_stream_and_a_gzip_one(data: bytes, chunk: int) -> None:
    assert _inflate("deflate", zlib.compress(data), chunk) == data
    assert _inflate("deflate", gzip.compress(data), chunk) == data


@given(st.binary(min_size=1, max_size=2000), st.data())
def test_a_stream_cut_short_is_400(data: bytes, draw: st.DataObject) -> None:
    whole = gzip.compress(data)
    cut = draw.draw(st.integers(1, len(whole) - 1))
    with pytest.raises(InvalidInput, match=r"^Request body is not valid gzip \("):
        _inflate("gzip", whole[:cut], 7)


def test_bytes_that_are_no_stream_or_trail_one_are_400() -> None:
    with pytest.raises(InvalidInput, match=r"not valid gzip \(it is not a valid stream\)"):
        _inflate("gzip", b'{"attributes": []}', 100)
    with pytest.raises(InvalidInput, match="not valid deflate"):
        _inflate("deflate", gzip.compress(b"{}") + b"junk", 100)


@pytest.mark.parametrize("chunk", [1, 4096, 1 << 20])
def test_output_past_the_limit_is_413_before_it_is_all_inflated(chunk: int) -> None:
    bomb = gzip.compress(b" " * 50_000_000)  # ~48 KB that inflates to 50 MB
    d = BodyDecompressor("gzip", 1000)

    def feed_all() -> None:
        for i in range(0, len(bomb), chunk):
            assert sum(map(len, d.feed(bomb[i : i + chunk]))) <= 1000

    with pytest.raises(PayloadTooLarge, match="larger than the limit of 1000 bytes"):
        feed_all()


def test_output_at_the_limit_is_read() -> None:
    assert _inflate("gzip", gzip.compress(b"x" * 1000), 50, limit=1000) == b"x" * 1000


def test_an_empty_body_is_empty() -> None:
    assert _inflate("gzip", b"", 1) == b""
