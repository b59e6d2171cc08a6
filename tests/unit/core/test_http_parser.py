"""The server parses HTTP with httptools (a dependency), which uvicorn's `http="auto"` picks."""

from __future__ import annotations

from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def test_uvicorn_picks_the_httptools_parser() -> None:
    assert AutoHTTPProtocol is HttpToolsProtocol
