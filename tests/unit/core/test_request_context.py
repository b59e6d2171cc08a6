"""The request context middleware with the real error handlers, in process: ids, log lines, slashes."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cohorthub.api.errors import handle_cohorthub_error, handle_http_exception, handle_unexpected
from cohorthub.api.middleware import RequestContext
from cohorthub.errors import CohorthubError, Unauthorized


async def ok(_request: Request) -> Response:
    return JSONResponse({"ok": True})


async def denied(_request: Request) -> Response:
    raise Unauthorized("Invalid Partner API key")


async def boom(_request: Request) -> Response:
    raise RuntimeError("bug")


def client(*, log_requests: bool = True) -> httpx.AsyncClient:
    app = Starlette(
        routes=[
            Route("/partners/heap/cohorts", ok, methods=["POST"]),
            Route("/denied", denied),
            Route("/boom", boom),
        ],
        middleware=[Middleware(RequestContext, log_requests=log_requests)],
        exception_handlers={
            CohorthubError: handle_cohorthub_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_each_request_gets_an_id_in_a_header_and_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cohorthub.access")
    async with client() as http:
        response = await http.post(
            "http://test//partners/heap/cohorts?api_key=SECRET", json={"client_secret": "SECRET"}
        )
    assert response.status_code == 200  # the repeated slash found the route
    rid = response.headers["x-request-id"]
    (line,) = [r.getMessage() for r in caplog.records if r.name == "cohorthub.access"]
    assert line.startswith("POST /partners/heap/cohorts 200 ") and line.endswith(f"rid={rid}")
    assert "SECRET" not in caplog.text


@pytest.mark.anyio
async def test_error_bodies_carry_the_request_id_and_a_client_id_is_kept() -> None:
    async with client() as http:
        denied_ = await http.get("/denied", headers={"X-Request-Id": "partner-req-42"})
        missing = await http.get("/nope", headers={"X-Request-Id": "bad id with spaces"})
    assert denied_.status_code == 401
    assert denied_.json() == {"message": "Invalid Partner API key", "request_id": "partner-req-42"}
    assert missing.status_code == 404
    assert missing.json()["request_id"] == missing.headers["x-request-id"] != "bad id with spaces"


@pytest.mark.anyio
async def test_a_500_is_logged_with_method_path_and_request_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with client() as http:
        response = await http.get("/boom")
    assert response.status_code == 500
    rid = response.headers["x-request-id"]
    assert response.json() == {"message": "Internal server error", "request_id": rid}
    errors = [r for r in caplog.records if r.name == "cohorthub.api"]
    assert errors and f"GET /boom rid={rid}" in errors[0].getMessage() and errors[0].exc_info
    access = [r.getMessage() for r in caplog.records if r.name == "cohorthub.access"]
    assert access == [access[0]] and access[0].startswith("GET /boom 500 ")


@pytest.mark.anyio
async def test_the_request_log_can_be_turned_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cohorthub.access")
    async with client(log_requests=False) as http:
        response = await http.post("/partners/heap/cohorts", json={})
    assert response.headers["x-request-id"]
    assert not [r for r in caplog.records if r.name == "cohorthub.access"]
