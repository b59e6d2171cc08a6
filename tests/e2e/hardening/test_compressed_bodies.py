"""Request bodies sent compressed (`Content-Encoding: gzip` or `deflate`) over real HTTP: read as if sent
plain, bounded by the limit after decompression, refused with a clear error (and nothing changed)
when the coding is unknown or the stream is broken."""

from __future__ import annotations

import gzip
import json
import time
import zlib
from typing import Any

import httpx
import pytest

from cohorthub.apps import services as apps
from cohorthub.bootstrap import Container
from tests.e2e.hardening.conftest import Hub
from tests.e2e.sdk.conftest import create_sdk_app

TRACK = {"attributes": [{"external_id": "zipped", "plan": "pro"}]}


def send(hub: Hub, path: str, body: bytes, coding: str, media: str = "application/json") -> httpx.Response:
    headers = {**hub.auth, "Content-Type": media, "Content-Encoding": coding}
    return hub.http.post(path, content=body, headers=headers)


def plan_of(hub: Hub, external_id: str) -> Any:
    users = hub.post("/users/export/ids", {"external_ids": [external_id]}).json()["users"]
    return users[0]["custom_attributes"].get("plan") if users else None


@pytest.mark.parametrize(
    ("coding", "pack"),
    [("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress), ("identity", bytes)],
    ids=["gzip", "x-gzip", "deflate", "identity"],
)
def test_a_compressed_track_is_read_as_sent(hub: Hub, coding: str, pack: Any) -> None:
    response = send(hub, "/users/track", pack(json.dumps(TRACK).encode()), coding)
    assert response.status_code == 201, response.text
    assert plan_of(hub, "zipped") == "pro"


def test_a_partner_import_and_a_users_import_may_be_gzip(hub: Hub) -> None:
    users = {"attributes": [{"external_id": f"u{i}"} for i in range(3)]}
    assert hub.post("/users/track", users).status_code == 201
    cohort = hub.tenant.body(cohort_id="c1", name="C", created_at="2026-11-01T10:00:00Z")
    created = hub.http.post(
        "/partners/heap/cohorts",
        content=gzip.compress(json.dumps(cohort).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert created.status_code == 201, created.text
    change = hub.tenant.body(cohort_id="c1", cohort_changes=[{"user_ids": ["u0", "u1", "nobody"]}])
    imported = hub.http.post(
        "/partners/heap/cohorts/users",
        content=gzip.compress(json.dumps(change).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert imported.status_code == 201, imported.text
    assert (imported.json()["entered"], imported.json()["size"]) == (2, 2)
    csv = "external_id,plan\n" + "".join(f"bulk{i},gold\n" for i in range(2000))
    uploaded = send(hub, "/users/import", gzip.compress(csv.encode()), "gzip", "text/csv")
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["created"] == 2000
    assert plan_of(hub, "bulk1999") == "gold"


@pytest.mark.parametrize(
    ("coding", "body", "status", "message"),
    [
        (
            "br",
            json.dumps(TRACK).encode(),
            415,
            "Content-Encoding 'br' is not supported: send the body as gzip, deflate or as is",
        ),
        (
            "gzip, deflate",
            zlib.compress(gzip.compress(json.dumps(TRACK).encode())),
            415,
            "Content-Encoding 'gzip, deflate' is not supported: send the body as gzip, deflate or as is",
        ),
        (
            "gzip",
            json.dumps(TRACK).encode(),
            400,
            "Request body is not valid gzip (it is not a valid stream)",
        ),
        (
            "gzip",
            gzip.compress(json.dumps(TRACK).encode())[:-4],
            400,
            "Request body is not valid gzip (it ends before its stream does)",
        ),
        (
            "deflate",
            zlib.compress(json.dumps(TRACK).encode())[:-1],
            400,
            "Request body is not valid deflate (it ends before its stream does)",
        ),
        (
            "gzip",
            gzip.compress(json.dumps(TRACK).encode() + b" " * 5_000_000),
            413,
            "Request body is larger than the limit of 4194304 bytes",
        ),
    ],
    ids=["br", "two-codings", "not-gzip", "gzip-cut", "deflate-cut", "inflates-past-limit"],
)
def test_bad_codings_and_streams_are_refused_and_change_nothing(
    hub: Hub, coding: str, body: bytes, status: int, message: str
) -> None:
    response = send(hub, "/users/track", body, coding)
    assert (response.status_code, response.json()["message"]) == (status, message)
    assert ("accept-encoding" in response.headers) == (status == 415)
    if status == 415:
        assert response.headers["accept-encoding"] == "gzip, deflate"
    assert plan_of(hub, "zipped") is None


def test_a_body_that_inflates_past_the_limit_is_refused_while_it_arrives(hub: Hub) -> None:
    """~100 KB on the wire that would inflate to 100 MB: refused at 4 MiB, and the server still answers."""
    bomb = gzip.compress(b'{"attributes": [], "pad": "' + b" " * 100_000_000 + b'"}')
    response = send(hub, "/users/track", bomb, "gzip")
    assert response.status_code == 413, response.text
    assert response.json()["message"] == "Request body is larger than the limit of 4194304 bytes"
    assert hub.http.get("/healthz").status_code == 200


def test_the_sdk_endpoint_refuses_an_unknown_coding_as_it_refuses_bad_data(
    container: Container, hub: Hub
) -> None:
    key = create_sdk_app(container, hub.tenant.workspace_id)
    body = json.dumps({"api_key": key, "device_id": "d", "time": int(time.time()), "events": []}).encode()
    headers = {"Content-Type": "application/json", "X-Braze-Api-Key": key}
    response = hub.http.post("/api/v3/data/", content=body, headers={**headers, "Content-Encoding": "br"})
    assert response.status_code == 200
    assert response.json()["error"] == "invalid_request"
    with container.uow(readonly=True) as uow:
        [(_, counters)] = apps.list_apps(uow=uow, workspace_id=hub.tenant.workspace_id)
    assert counters.get("rejected_invalid_request") == 1
    zipped = hub.http.post(
        "/api/v3/data/", content=gzip.compress(body), headers={**headers, "Content-Encoding": "gzip"}
    )
    assert zipped.status_code == 200 and "error" not in zipped.json(), zipped.text
