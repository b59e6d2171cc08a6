"""A partner import wakes the messaging worker of its process: the Canvas e-mail goes out without
waiting for the worker's poll interval (set here far beyond the test's deadline)."""

from __future__ import annotations

import dataclasses
import time
import uuid

import httpx
import pytest

from cohorthub.bootstrap import Container, bootstrap
from cohorthub.cohorts import services as cohorts
from cohorthub.messaging import services
from cohorthub.messaging.channels.smtp import SmtpConfig, SmtpTransport
from cohorthub.messaging.ports import MemoryWebhookTransport
from cohorthub.runtimes import start_messaging
from tests.conftest import LiveServer
from tests.e2e.messaging.conftest import SmtpSink, wait_for
from tests.e2e.messaging.test_reengagement import CANVAS
from tests.integration.cohorts.factories import make_tenant
from tests.integration.segments import factories as f


def test_a_partner_import_wakes_the_worker_instead_of_waiting_for_its_poll(
    container: Container, live_server: LiveServer, smtp: tuple[SmtpSink, int]
) -> None:
    smtp_sink, smtp_port = smtp
    container.settings = dataclasses.replace(container.settings, messaging_poll_seconds=300)
    tenant = make_tenant(container)
    auth = {"Authorization": f"Bearer {tenant.rest_key}"}
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        attributes = [{"external_id": "ana", "email": "ana@example.com"}]
        assert http.post("/users/track", json={"attributes": attributes}, headers=auth).status_code == 201
        named = tenant.body(cohort_id="trial-left", name="Left", created_at="2024-01-01T00:00:00Z")
        assert http.post("/partners/heap/cohorts", json=named).status_code == 201
        canvas_id = http.post("/messaging/canvases", json=CANVAS, headers=auth).json()["id"]
        assert http.post(f"/messaging/canvases/{canvas_id}/launch", headers=auth).status_code == 200
        stop, thread = start_messaging(
            container, email=SmtpTransport(SmtpConfig(port=smtp_port)), webhook=MemoryWebhookTransport()
        )
        try:

            def idle() -> bool:  # its first round is done (it set the events cursor): it now waits
                with container.uow(readonly=True) as uow:
                    return uow.messaging.facts.cursor("events") is not None

            wait_for(idle, timeout=30)
            body = tenant.body(cohort_id="trial-left", cohort_changes=[{"user_ids": ["ana"]}])
            assert http.post("/partners/heap/cohorts/users", json=body).status_code == 201
            wait_for(lambda: smtp_sink.to() == ["ana@example.com"], timeout=30, what=smtp_sink.to)
        finally:
            stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()  # stopping wakes it too


def test_an_import_in_another_process_wakes_the_worker_through_postgresql(
    container: Container, smtp: tuple[SmtpSink, int]
) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; on SQLite one process writes")
    smtp_sink, smtp_port = smtp
    container.settings = dataclasses.replace(container.settings, messaging_poll_seconds=300)
    tenant = make_tenant(container)
    now = time.time()
    with container.uow() as uow:
        f.user(uow.conn, tenant.workspace_id, now=now, external_id="ana", email="ana@example.com")
        uow.commit()
    named = tenant.body(cohort_id="trial-left", name="Left", created_at="2024-01-01T00:00:00Z")
    with container.uow() as uow:
        cohorts.name_cohort(uow=uow, partner="heap", body=named, quota=10**6, now=now)
    with container.uow() as uow:
        canvas = services.create_program(
            uow=uow, workspace_id=tenant.workspace_id, kind="canvas", raw=CANVAS, now=now
        )
    with container.uow() as uow:
        services.launch_program(uow=uow, workspace_id=tenant.workspace_id, program_id=canvas.id, now=now)
    stop, thread = start_messaging(
        container, email=SmtpTransport(SmtpConfig(port=smtp_port)), webhook=MemoryWebhookTransport()
    )
    other = bootstrap(container.settings, run_migrations=False)  # another process's wiring
    try:

        def idle() -> bool:
            with container.uow(readonly=True) as uow:
                return uow.messaging.facts.cursor("events") is not None

        def listening() -> bool:
            with container.engine.connect() as conn:
                sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND query = 'LISTEN cohorthub_messaging'")  # fmt: skip
                return bool(conn.exec_driver_sql(sql).scalar())

        wait_for(idle, timeout=30)
        wait_for(listening, timeout=30)
        body = tenant.body(cohort_id="trial-left", cohort_changes=[{"user_ids": ["ana"]}])
        with other.uow() as uow:
            cohorts.import_cohort_changes(
                uow=uow, cache=other.membership, partner="heap", body=body, quota=10**6,
                identifier_max_length=512, compaction_threshold=10**6, request_id=str(uuid.uuid4()),
                now=time.time(), listeners=other.cohort_listeners,
            )  # fmt: skip
        wait_for(lambda: smtp_sink.to() == ["ana@example.com"], timeout=30, what=smtp_sink.to)
    finally:
        stop.set()
        other.close()
    thread.join(timeout=30)
