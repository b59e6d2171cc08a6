"""A size read answers while a writer holds the database, and its history point follows."""

from __future__ import annotations

import httpx

from cohorthub.bootstrap import Container
from tests.conftest import LiveServer
from tests.e2e.segments.test_segments_api import SEGMENT, _client, _setup


def test_a_size_read_does_not_wait_for_the_writer(container: Container, live_server: LiveServer) -> None:
    _, key, _ = _setup(container)
    with _client(live_server, key) as http:
        sid = http.post("/segments", json=SEGMENT).json()["id"]
        with container.uow() as writer:  # a long import or track holding the write lock
            writer.conn.exec_driver_sql("UPDATE workspaces SET name = name")
            size = http.get(f"/segments/{sid}/size", timeout=httpx.Timeout(60))
            assert size.status_code == 200, size.text
            assert size.json()["size"] == 2
        history = http.get(f"/segments/{sid}/history").json()["sizes"]
        assert [p["size"] for p in history] == [2]
