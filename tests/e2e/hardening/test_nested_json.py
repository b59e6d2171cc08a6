"""Deeply nested JSON is a 400 on every JSON endpoint, with or without credentials."""

from __future__ import annotations

import pytest

from tests.e2e.hardening.conftest import Hub

JSON_ENDPOINTS = [
    ("POST", "/partners/heap/cohorts"),
    ("POST", "/partners/heap/cohorts/users"),
    ("POST", "/users/track"),
    ("POST", "/users/identify"),
    ("POST", "/users/alias/new"),
    ("POST", "/users/delete"),
    ("POST", "/users/export/ids"),
    ("POST", "/segments"),
    ("PUT", "/segments/some-id"),
    ("POST", "/currents"),
]


def _nested(levels: int) -> bytes:
    return b'{"name": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


@pytest.mark.parametrize("levels", [65, 100_000])
def test_nesting_past_the_limit_is_400_everywhere(hub: Hub, levels: int) -> None:
    for method, path in JSON_ENDPOINTS:
        response = hub.raw(method, path, _nested(levels))
        assert response.status_code == 400, (path, response.text)
        assert response.json()["message"] == "Request body is not valid JSON: nested deeper than 64 levels"


def test_nesting_within_the_limit_is_read(hub: Hub) -> None:
    response = hub.raw("POST", "/users/track", _nested(64))
    assert response.status_code == 400
    assert "nested" not in response.text
