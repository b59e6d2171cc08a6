"""Purchases as action-based triggers and as conversions, through the real stores (both)."""

from __future__ import annotations

import time

import pytest

from cohorthub.bootstrap import Container
from cohorthub.messaging import services
from cohorthub.messaging.errors import InvalidProgram
from cohorthub.messaging.ports import MemoryEmailTransport, MemoryWebhookTransport
from cohorthub.runtimes import messaging_runtime
from tests.integration.messaging.test_campaign_flow import _events, _setup, campaign
from tests.integration.segments import factories as f


def test_a_purchase_triggers_an_action_campaign_and_counts_as_its_conversion(container: Container) -> None:
    ws, nums = _setup(container, n=2)
    email = MemoryEmailTransport()
    rt = messaging_runtime(container, email=email, webhook=MemoryWebhookTransport())
    body = campaign(
        delivery={"type": "action", "purchase": "sku-1"},
        conversion={"purchase": "*", "window_seconds": 3600},
    )
    with container.uow() as uow:
        now = time.time()
        program = services.create_program(uow=uow, workspace_id=ws, kind="campaign", raw=body, now=now)
    with container.uow() as uow:
        services.launch_program(uow=uow, workspace_id=ws, program_id=program.id, now=time.time())
    rt.worker.round()  # the scanners start after what is already there
    with container.uow() as uow:
        f.purchase(uow.conn, ws, nums[0], "sku-1", at=time.time())
        f.purchase(uow.conn, ws, nums[1], "sku-2", at=time.time())  # another product
        f.event(uow.conn, ws, nums[1], "sku-1", at=time.time())  # a custom event of that name
        uow.commit()
    for _ in range(3):
        rt.worker.round()
    assert [m.to for m in email.sent] == ["u0@example.com"]
    with container.uow() as uow:
        f.purchase(uow.conn, ws, nums[0], "sku-9", at=time.time() + 1)
        uow.commit()
    rt.worker.round()
    conversions = _events(container, "users.campaigns.Conversion")
    assert [e["properties"]["conversion_behavior"] for e in conversions] == ["Makes Purchase: sku-9"]
    with container.uow(readonly=True) as uow:
        stats = services.program_stats(uow=uow, workspace_id=ws, program_id=program.id)
    assert (stats["delivered"], stats["converted"]) == (1, 1)


def test_a_trigger_names_an_event_or_a_purchase_not_both(container: Container) -> None:
    ws, _ = _setup(container, n=1)
    body = campaign(delivery={"type": "action", "event": "a", "purchase": "*"})
    with container.uow() as uow, pytest.raises(InvalidProgram, match="either event or purchase"):
        services.create_program(uow=uow, workspace_id=ws, kind="campaign", raw=body, now=time.time())


def test_a_canvas_entry_or_decision_names_an_event_or_a_purchase_not_both(container: Container) -> None:
    ws, _ = _setup(container, n=1)
    step = {"id": "d", "type": "decision_split", "within_seconds": 60}
    for entry, split in (({"type": "event", "event": "a", "purchase": "*"}, {**step, "event": "a"}),
                         ({"type": "api"}, {**step, "event": "a", "purchase": "*"})):  # fmt: skip
        body = {"name": "C", "entry": entry, "steps": [split]}
        with container.uow() as uow, pytest.raises(InvalidProgram, match="either event or purchase"):
            services.create_program(uow=uow, workspace_id=ws, kind="canvas", raw=body, now=time.time())
