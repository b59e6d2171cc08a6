"""A campaign built in the dashboard: target users by segment, a Liquid preview for a chosen user, the
audience, a test send, launch; the audience gets the e-mail through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from cohorthub.bootstrap import Container
from cohorthub.config import Settings
from cohorthub.runtimes import start_messaging
from cohorthub.segments import services as segments
from tests.e2e.messaging.conftest import SmtpSink, wait_for
from tests.e2e.web.conftest import World, serious_violations, shot, sign_in, sink_settings

SPAIN = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}


@pytest.fixture
def settings(database_url: str, smtp_sink: SmtpSink) -> Settings:
    """Settings that send e-mail to the sink."""
    return sink_settings(database_url)


def test_a_campaign_to_a_segment_is_previewed_test_sent_and_launched(
    page: Page, world: World, container: Container, smtp_sink: SmtpSink
) -> None:
    with container.uow() as uow:
        draft = segments.SegmentDraft(name="Spain", filter=SPAIN)
        segment = segments.create_segment(
            uow=uow, workspace_id=world.workspace_id, draft=draft, now=container.now()
        )
    sign_in(page, world.url, "marketer@acme.io")
    page.goto(f"{world.url}/dashboard/campaigns/new")
    page.get_by_label("Campaign name").fill("We miss you")
    page.get_by_label("Segment (target audience)").select_option(segment.id)
    page.get_by_label("Subject (Liquid)").fill("Hola {{${user_id}}}")
    page.get_by_label("Body (HTML with Liquid)").fill("<p>Come back, {{${user_id}}}</p>")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.locator("#audience-size")).to_have_text("5")  # u1, u3, u5, u7, u9
    page.locator("#count-reachable").click()
    expect(page.locator("#audience-reachable")).to_have_text("5")
    page.get_by_label("External id").fill("u3")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-subject")).to_have_text("Hola u3")
    assert serious_violations(page) == []
    shot(page, "en-09-campaign")

    page.get_by_label("E-mail address").fill("tester@acme.io")
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_role("status")).to_contain_text("Test send")
    wait_for(lambda: "tester@acme.io" in smtp_sink.to(), what=smtp_sink.to)

    page.locator("#campaign-launch").click()
    stop, thread = start_messaging(container)
    try:
        wanted = {f"u{i}@example.com" for i in (1, 3, 5, 7, 9)}
        wait_for(lambda: wanted <= set(smtp_sink.to()), timeout=90, what=smtp_sink.to)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert sorted(smtp_sink.to()) == sorted([*wanted, "tester@acme.io"])
    page.reload()
    expect(page.locator("#stat-sent")).to_have_text("5")
    shot(page, "en-10-campaign-sent")
