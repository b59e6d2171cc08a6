"""What a user received, read from the send ledger on both stores: newest first, paged, with the
campaign or Canvas it came from and what became of it."""

from __future__ import annotations

import time

from sqlalchemy import select

from cohorthub.bootstrap import Container
from cohorthub.messaging import services
from cohorthub.messaging.history import user_messages
from cohorthub.messaging.ports import SendKey
from cohorthub.store.tables import users
from tests.integration.messaging.test_campaign_flow import _setup, campaign

NOW = time.time()


def test_a_users_messages_come_newest_first_a_page_at_a_time(container: Container) -> None:
    ws, nums = _setup(container, n=2)
    with container.uow() as uow:
        program = services.create_program(uow=uow, workspace_id=ws, kind="campaign", raw=campaign(), now=NOW)
    with container.uow() as uow:
        ledger = uow.messaging.ledger
        ids = {}
        for i, at in enumerate([NOW - 30, NOW - 20, NOW - 20, NOW - 10]):  # two at the same time
            key = SendKey(program.id, "", nums[0], f"d{i}")
            ids |= ledger.reserve(ws, [(key, None, "email", "u0@example.com")], now=at)
        other = SendKey(program.id, "", nums[1], "d0")
        ledger.reserve(ws, [(other, None, "email", "u1@example.com")], now=NOW)
        ledger.settle([(ids[SendKey(program.id, "", nums[0], "d3")], "delivered", None)], now=NOW)
        ledger.settle([(ids[SendKey(program.id, "", nums[0], "d0")], "bounced", "550")], now=NOW)
        ledger.touch(ids[SendKey(program.id, "", nums[0], "d3")], "opened_at", now=NOW)
        uow.commit()
    with container.uow(readonly=True) as uow:
        braze_id = uow.conn.execute(select(users.c.braze_id).where(users.c.num == nums[0])).scalar_one()
        first = user_messages(uow=uow, workspace_id=ws, braze_id=braze_id, limit=3)
        assert [m.row.state for m in first.messages] == ["delivered", "sending", "sending"]
        assert first.messages[0].row.opened_at is not None and first.messages[0].program == program
        assert first.messages[0].step_name is None
        assert first.older is not None
        second = user_messages(uow=uow, workspace_id=ws, braze_id=braze_id, before=first.older, limit=3)
        assert [m.row.state for m in second.messages] == ["bounced"] and second.older is None
        seen = [m.row.id for m in first.messages + second.messages]
        assert sorted(seen) == sorted(ids.values()) and len(set(seen)) == 4
        assert user_messages(uow=uow, workspace_id=ws, braze_id="0" * 24).messages == []
