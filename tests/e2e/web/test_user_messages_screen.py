"""Users → messages: a looked-up user's messages from the send ledger, newest first, ten with the look-up
and the older ones a page at a time; a bad page cursor is a 400."""

from __future__ import annotations

import re

from cohorthub.bootstrap import Container
from cohorthub.messaging import services as messaging
from cohorthub.messaging.ports import SendKey
from tests.e2e.web.conftest import World, session

MAIL = {"from": "news@acme.io", "subject": "Hi", "body": "Hi"}


def test_a_users_messages_are_listed_newest_first_and_paged(world: World, container: Container) -> None:
    now = container.now()
    canvas = {
        "name": "Journey",
        "entry": {"type": "api"},
        "steps": [{"id": "hello", "name": "Hello", "type": "message", "channel": "email", "email": MAIL}],
    }
    with container.uow() as uow:
        campaign = messaging.create_program(
            uow=uow,
            workspace_id=world.workspace_id,
            kind="campaign",
            now=now,
            raw={"name": "Promo", "channel": "email", "email": MAIL},
        )
        journey = messaging.create_program(
            uow=uow, workspace_id=world.workspace_id, kind="canvas", raw=canvas, now=now
        )
    with container.uow() as uow:
        num = uow.messaging.facts.nums_by_external_ids(world.workspace_id, ["u3"])["u3"]
        ledger = uow.messaging.ledger
        for i in range(11):
            ledger.reserve(
                world.workspace_id,
                [(SendKey(campaign.id, "", num, f"d{i}"), None, "email", "x")],
                now=now - 100 + i,
            )
        newest = ledger.reserve(
            world.workspace_id, [(SendKey(journey.id, "hello", num, "e1"), None, "email", "x")], now=now
        )
        ledger.settle([(i, "delivered", None) for i in newest.values()], now=now)
        for i in newest.values():
            ledger.touch(i, "clicked_at", now=now)
        uow.commit()
    with session(world, "viewer@acme.io") as (client, _):
        page = client.get("/dashboard/users", params={"by": "external_id", "q": "u3"})
        assert page.status_code == 200
        rows = re.findall(r'<tr data-message="\d+">(.*?)</tr>', page.text, re.S)
        assert len(rows) == 10
        assert "Journey</a>" in rows[0] and "Canvas · Hello" in rows[0] and "Delivered (accepted" in rows[0]
        assert all("Promo</a>" in r and "Sending" in r for r in rows[1:])
        older = re.search(r'href="(/dashboard/users/\w+/messages\?before=[^"]+)" class="older"', page.text)
        assert older is not None
        rest = client.get(older[1].replace("&amp;", "&"))
        assert rest.status_code == 200 and len(re.findall(r'<tr data-message="\d+">', rest.text)) == 2
        assert 'class="older"' not in rest.text
        assert client.get(older[1].split("?")[0], params={"before": "x:y"}).status_code == 400
        other = client.get("/dashboard/users", params={"by": "external_id", "q": "u4"})
        assert other.status_code == 200 and "data-message" not in other.text
