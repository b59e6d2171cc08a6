"""The SDK endpoint over HTTP without a browser: CORS, keys, origins, limits, bad events, counters."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cohorthub.apps import services as apps
from cohorthub.bootstrap import Container
from cohorthub.cli.main import app as cli
from cohorthub.workspaces import services as workspaces
from tests.conftest import LiveServer
from tests.e2e.sdk.conftest import create_sdk_app

DEVICE = "5d895181-390b-41ce-a2ae-bbfdb9572efc"
SESSION = "79c2fab0-877b-42cd-a905-1d808e11f58f"


def _body(key: str, *events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"api_key": key, "device_id": DEVICE, "time": int(time.time()), "sdk_version": "6.13.0",
            "events": list(events), **extra}  # fmt: skip


def _event(name: str, data: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "time": round(time.time(), 3), "data": data or {}, "session_id": SESSION, **extra}


@pytest.fixture
def setup(container: Container, live_server: LiveServer) -> tuple[httpx.Client, str, str, str]:
    """A client, the workspace id, its REST key and an SDK key."""
    with container.uow() as uow:
        ws, rest = workspaces.create_workspace(uow=uow, name="Acme", now=time.time())
    return (
        httpx.Client(base_url=live_server.url, timeout=30),
        ws.id,
        rest.key,
        create_sdk_app(container, ws.id),
    )


def _counters(c: Container, workspace_id: str) -> dict[str, int]:
    with c.uow(readonly=True) as uow:
        [(_, counters)] = apps.list_apps(uow=uow, workspace_id=workspace_id)
    return counters


def _exported(http: httpx.Client, rest: str) -> list[dict[str, Any]]:
    response = http.post(
        "/users/export/ids", json={"device_id": DEVICE}, headers={"Authorization": f"Bearer {rest}"}
    )
    users: list[dict[str, Any]] = response.json()["users"]
    return users


def test_preflight_and_post_carry_cors_headers_with_and_without_the_slash(
    setup: tuple[httpx.Client, str, str, str],
) -> None:
    http, _, rest, key = setup
    origin = "https://shop.example"
    asked = "content-type,x-braze-api-key,x-braze-req-attempt,x-requested-with"
    for path in ("/api/v3/data/", "/api/v3/data"):
        pre = http.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": asked})  # fmt: skip
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == origin
        assert "POST" in pre.headers["access-control-allow-methods"]
        assert pre.headers["access-control-allow-headers"] == asked
        posted = http.post(
            path, json=_body(key, _event("ss")), headers={"Origin": origin, "X-Braze-Api-Key": key}
        )
        assert posted.status_code == 200 and posted.json() == {}
        assert posted.headers["access-control-allow-origin"] == origin
    assert len(_exported(http, rest)) == 1


def test_unknown_key_is_the_error_the_sdk_logs_and_stores_nothing(
    setup: tuple[httpx.Client, str, str, str],
) -> None:
    http, _, rest, _ = setup
    response = http.post(
        "/api/v3/data/", json=_body("not-a-key", _event("ss")), headers={"Origin": "https://a.b"}
    )
    assert response.status_code == 200
    assert response.json()["error"] == "invalid_api_key"
    assert response.headers["access-control-allow-origin"] == "https://a.b"
    assert _exported(http, rest) == []


def test_allowed_origins_are_enforced_per_workspace(
    container: Container, setup: tuple[httpx.Client, str, str, str]
) -> None:
    http, ws, rest, key = setup
    with container.uow() as uow:
        assert apps.set_allowed_origins(uow=uow, workspace_id=ws, origins=["https://Shop.example/"]) == [
            "https://shop.example"
        ]
    refused = http.post(
        "/api/v3/data/", json=_body(key, _event("ss")), headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    assert _exported(http, rest) == []
    allowed = http.post(
        "/api/v3/data/", json=_body(key, _event("ss")), headers={"Origin": "https://shop.example"}
    )
    assert allowed.status_code == 200 and allowed.json() == {}
    assert _counters(container, ws)["rejected_origin"] == 1


def test_bad_requests_and_events_are_answered_so_the_sdk_does_not_loop_and_are_counted(
    container: Container, setup: tuple[httpx.Client, str, str, str]
) -> None:
    http, ws, rest, key = setup
    huge = _body(key, _event("ce", {"n": "big", "p": {"blob": "x" * (1024 * 1024)}}))
    assert http.post("/api/v3/data/", json=huge, headers={"X-Braze-Api-Key": key}).json()["error"] == (
        "payload_too_large"
    )
    assert http.post("/api/v3/data/", content=b"{nope", headers={"X-Braze-Api-Key": key}).json()["error"] == (
        "invalid_request"
    )
    assert http.post("/api/v3/data/", json={"api_key": key}).json()["error"] == "no_device_identifier"
    assert _exported(http, rest) == []
    mixed = _body(
        key,
        _event("ce", {"n": "played"}),
        _event("ce", {}),  # no name
        _event("zz", {}),  # an unknown code
        _event("ie", {"e": "the SDK's own error"}),
        _event("cci", {"ids": ["card"]}),  # content cards: not served here
        _event("p", {"pid": "sku", "c": "USD", "p": "not a price", "q": 1}),
        "not an object",
    )
    assert http.post("/api/v3/data/", json=mixed).json() == {}
    [user] = _exported(http, rest)
    assert [e["name"] for e in user["custom_events"]] == ["played"]
    counters = _counters(container, ws)
    assert counters == {
        "rejected_payload_too_large": 1,
        "rejected_invalid_request": 1,
        "rejected_no_device_identifier": 1,
        "stored": 1,
        "malformed": 3,
        "unknown": 1,
        "sdk_errors": 1,
        "ignored": 1,
    }


def test_cli_creates_an_app_and_lists_its_counters(database_url: str) -> None:
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(cli, [*args, "--database", database_url, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    ws = run("workspace", "create", "Acme")["workspace_id"]
    created = run("app", "create", "--workspace", ws, "--name", "web")
    assert created["name"] == "web" and len(created["sdk_api_key"]) == 36 and created["app_id"]
    assert run("app", "list", "--workspace", ws) == [
        {"app_id": created["app_id"], "name": "web", "counters": {}}
    ]
    assert run("app", "origins", "--workspace", ws, "--allow", "https://shop.example")["allowed_origins"] == [
        "https://shop.example"
    ]
    assert run("app", "origins", "--workspace", ws, "--any")["allowed_origins"] == ["*"]
    refused = runner.invoke(
        cli, ["app", "origins", "--workspace", ws, "--allow", "ftp://x", "--database", database_url]
    )
    assert refused.exit_code == 3 and "Not an origin" in refused.output


def test_nul_characters_are_refused_or_dropped_alike_on_both_stores(
    setup: tuple[httpx.Client, str, str, str], container: Container
) -> None:
    http, ws, _rest, key = setup
    refused = http.post("/api/v3/data/", json={**_body(key), "device_id": "d\x00"})
    assert refused.status_code == 200 and refused.json()["error"] == "invalid_request"
    device = {"browser": "Chrome\x00", "os_version": "Linux"}
    stored = http.post("/api/v3/data/", json=_body(key, _event("ss", session_id="s\x00"), device=device))
    assert (stored.status_code, stored.json()) == (200, {})  # the bad session event and field are dropped
    assert _counters(container, ws)["rejected_invalid_request"] == 1


@pytest.mark.parametrize("levels", [65, 100_000])
def test_a_body_nested_past_the_limit_is_an_invalid_request_the_sdk_drops(
    setup: tuple[httpx.Client, str, str, str], container: Container, levels: int
) -> None:
    http, ws, rest, key = setup
    nested = b"[" * levels + b"]" * levels
    body = b'{"device_id": "%s", "events": [{"name": "ce", "time": 1, "data": {"n": "x", "p": {"a": %s}}}]}'
    response = http.post(
        "/api/v3/data/", content=body % (DEVICE.encode(), nested), headers={"X-Braze-Api-Key": key}
    )
    assert response.status_code == 200  # not a 500, which the SDK would send again and again
    assert response.json() == {
        "error": "invalid_request",
        "message": "Request body is not valid JSON: nested deeper than 64 levels",
    }
    assert _exported(http, rest) == []
    assert _counters(container, ws) == {"rejected_invalid_request": 1}


def test_integers_past_the_float_range_make_events_malformed_not_a_server_error(
    setup: tuple[httpx.Client, str, str, str], container: Container
) -> None:
    http, ws, rest, key = setup
    huge = 10**309
    events = [
        _event("ce", {"n": "late"}, time=huge),
        _event("se", {"d": huge}),
        _event("p", {"pid": "sku", "c": "USD", "p": huge, "q": 1}),
        _event("ce", {"n": "kept", "p": {"big": huge}}),
    ]
    response = http.post("/api/v3/data/", json=_body(key, *events), headers={"X-Braze-Api-Key": key})
    assert (response.status_code, response.json()) == (200, {})
    [user] = _exported(http, rest)
    assert [e["name"] for e in user["custom_events"]] == ["kept"]
    assert _counters(container, ws) == {"stored": 1, "malformed": 3}


def test_a_request_naming_more_users_than_one_browser_could_is_refused_whole(
    setup: tuple[httpx.Client, str, str, str], container: Container
) -> None:
    http, ws, rest, key = setup
    # 20,000 user ids: on PostgreSQL a transaction lock each, past the server's lock table (a 500 before)
    attributes = [{"user_id": f"u{i}"} for i in range(20_000)]
    response = http.post("/api/v3/data/", json=_body(key, attributes=attributes))
    assert response.status_code == 200
    assert response.json() == {"error": "invalid_request", "message": "the request names more than 75 users"}
    assert _exported(http, rest) == []
    assert _counters(container, ws) == {"rejected_invalid_request": 1}
    few = [{"user_id": f"u{i}", "first_name": "Ana"} for i in range(75)]
    assert (
        http.post(
            "/api/v3/data/", json=_body(key, _event("ce", {"n": "x"}, user_id="u0"), attributes=few)
        ).json()
        == {}
    )


def test_a_session_id_longer_than_the_store_holds_is_cut_alike_on_both_stores(
    setup: tuple[httpx.Client, str, str, str], container: Container
) -> None:
    http, ws, rest, key = setup
    long_session = "s" * 200
    events = [_event("ss", session_id=long_session), _event("se", {"d": 5}, session_id=long_session)]
    response = http.post("/api/v3/data/", json=_body(key, *events), headers={"X-Braze-Api-Key": key})
    assert (response.status_code, response.json()) == (200, {})
    assert _counters(container, ws) == {"stored": 2}
    assert len(_exported(http, rest)) == 1
