"""Read-only units of work: on PostgreSQL each statement runs on its own (no BEGIN, no ROLLBACK)."""

from __future__ import annotations

import time

from sqlalchemy import text

from cohorthub.bootstrap import Container
from cohorthub.identity import services as identity
from cohorthub.segments import services as segments
from cohorthub.workspaces import services as workspaces


def test_a_read_only_unit_opens_no_transaction_on_postgresql(container: Container) -> None:
    with container.uow(readonly=True) as uow:
        assert uow.conn.execute(text("SELECT 1")).scalar_one() == 1
        dbapi = uow.conn.connection.dbapi_connection
        if uow.dialect == "postgresql":
            from psycopg.pq import TransactionStatus

            assert dbapi is not None and dbapi.info.transaction_status == TransactionStatus.IDLE
            # each statement is its own transaction: two statements, two transaction ids
            first = uow.conn.execute(text("SELECT txid_current()")).scalar_one()
            assert uow.conn.execute(text("SELECT txid_current()")).scalar_one() != first
    with container.uow() as uow:  # a writing unit still runs in one transaction
        if uow.dialect == "postgresql":
            first = uow.conn.execute(text("SELECT txid_current()")).scalar_one()
            assert uow.conn.execute(text("SELECT txid_current()")).scalar_one() == first


def test_a_segment_scanned_in_a_read_only_unit_counts_every_member(container: Container) -> None:
    now = time.time()
    with container.uow() as uow:
        ws, _key = workspaces.create_workspace(uow=uow, name="ro", now=now)
        uow.commit()
    for start in range(0, 300, 75):
        plans = [("free", "pro", "pro")[i % 3] for i in range(start, start + 75)]
        attributes = [{"external_id": f"u{start + k}", "plan": plan} for k, plan in enumerate(plans)]
        with container.uow() as uow:
            identity.track_users(uow=uow, workspace_id=ws.id, body={"attributes": attributes}, now=now)
            uow.commit()
    plan_is_pro = {
        "type": "custom_attribute",
        "attribute": "plan",
        "data_type": "string",
        "op": "equals",
        "value": "pro",
    }
    with container.uow() as uow:
        draft = segments.SegmentDraft(name="pro", filter=plan_is_pro)
        record = segments.create_segment(uow=uow, workspace_id=ws.id, draft=draft, now=now)
    with container.uow(readonly=True) as uow:  # a cold read: the leaf is scanned (server-side cursor)
        _, members = segments.evaluate_segment(
            uow=uow,
            indexes=container.segments,
            membership=container.membership,
            workspace_id=ws.id,
            segment_id=record.id,
            now=now + 1,
        )
    assert len(members) == 200
