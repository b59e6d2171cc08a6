"""The seed flow in a real browser, in English and in Spanish: enable Heap and read its key, import a
cohort over the API, find it in the segment builder, build "Heap Cohorts includes X AND NOT …",
see the exact size, save; create a campaign targeting it and launch it to a real SMTP server (aiosmtpd);
see the message on the user's profile; build a Canvas in the editor; and axe-core finds no serious
accessibility violation on any screen."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from cohorthub.bootstrap import Container
from cohorthub.config import Settings
from cohorthub.runtimes import start_messaging
from tests.e2e.messaging.conftest import SmtpSink, wait_for
from tests.e2e.web.conftest import World, import_cohort, serious_violations, shot, sign_in, sink_settings

WORDS = {
    "en": {"partners": "Technology Partners", "filter": "Heap Cohorts", "includes": "includes",
           "key": "Data Import Key", "endpoint": "REST Endpoint", "segments": "Segments", "not": "Not",
           "campaigns": "Campaigns", "target": "Target Users by Segment",
           "segment": "Segment (target audience)", "audience": "Target audience",
           "campaign_name": "Campaign name", "subject": "Subject (Liquid)", "body": "Body (HTML with Liquid)",
           "create": "Create campaign", "delivered": "Delivered", "canvas_name": "Canvas name",
           "entry": "Entry", "from": "From", "step_name": "Step name", "create_canvas": "Create Canvas",
           "add": "Add a step", "add_it": "Add the step", "type": "Step type", "amount": "Duration"},
    "es": {"partners": "Socios tecnológicos", "filter": "Cohortes de Heap", "includes": "incluye",
           "key": "Clave de importación de datos", "endpoint": "Punto final REST", "segments": "Segmentos",
           "not": "No", "campaigns": "Campañas", "target": "Usuarios objetivo por segmento",
           "segment": "Segmento (público objetivo)", "audience": "Público objetivo",
           "campaign_name": "Nombre de la campaña", "subject": "Asunto (Liquid)",
           "body": "Cuerpo (HTML con Liquid)", "create": "Crear campaña", "delivered": "Entregado",
           "canvas_name": "Nombre del Canvas", "entry": "Entrada", "from": "Remitente",
           "step_name": "Nombre del paso", "create_canvas": "Crear Canvas", "add": "Añadir un paso",
           "add_it": "Añadir el paso", "type": "Tipo de paso", "amount": "Duración"},
}  # fmt: skip


@pytest.fixture
def settings(database_url: str, smtp_sink: SmtpSink) -> Settings:
    """Settings that send e-mail to the sink."""
    return sink_settings(database_url)


def _switch_language(page: Page, language: str) -> None:
    page.locator("#language-switch").select_option(language)
    page.locator("#language-switch").locator("xpath=..").get_by_role("button").click()
    expect(page.locator("html")).to_have_attribute("lang", language)


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_seed_flow_in_the_browser(
    page: Page, world: World, language: str, container: Container, smtp_sink: SmtpSink
) -> None:
    w = WORDS[language]
    sign_in(page, world.url, "marketer@acme.io")
    if language == "es":
        _switch_language(page, "es")
    expect(page.get_by_role("heading", level=1)).to_have_text(w["partners"])
    assert serious_violations(page) == []
    shot(page, f"{language}-01-technology-partners")

    page.get_by_role("link", name="Heap", exact=True).click()
    expect(page.get_by_text(w["endpoint"])).to_be_visible()
    page.locator("form[action$='/partners/heap/enable'] button").click()
    key = page.locator("#data-import-key").inner_text().strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", key)
    expect(page.locator("#rest-endpoint")).to_have_text("http://testserver")  # the configured public URL

    import_cohort(world, key, "trial", "Trial abandoners", ["u1", "u2", "u3", "u4", "u5", "nobody"])
    import_cohort(world, key, "converted", "Converted", ["u5"])
    page.goto(f"{world.url}/dashboard/partners/heap")  # the key was shown once, in the POST's answer
    expect(page.locator("#data-import-key")).to_have_count(0)
    expect(page.locator(".cohort h3").first).to_contain_text("Converted")
    expect(page.get_by_text("user_ids:nobody")).to_be_visible()
    assert serious_violations(page) == []
    shot(page, f"{language}-02-heap-partner-page")

    page.get_by_role("navigation").get_by_role("link", name=w["segments"], exact=True).click()
    page.locator("a[href$='/segments/new']").click()
    page.locator(".add-filter").click()
    leaf = page.locator(".leaf").nth(0)
    expect(leaf.locator(".filter-type")).to_have_value("cohort:heap")
    expect(leaf.locator(".filter-type option:checked")).to_have_text(w["filter"])
    expect(leaf.locator(".cohort-op option:checked")).to_have_text(w["includes"])
    leaf.locator(".cohort-search").fill("trial")
    expect(leaf.locator(".cohort-list option")).to_have_text(["Trial abandoners"])
    leaf.locator(".cohort-list").select_option("trial")
    expect(page.locator("#live-size")).to_have_attribute("data-size", "5")  # u1..u5; "nobody" is no user

    page.locator(".add-filter").last.click()
    second = page.locator(".leaf").nth(1)
    second.locator(".cohort-list").select_option("converted")
    second.locator(".negate").check()
    expect(page.locator("#live-size")).to_have_attribute("data-size", "4")

    page.locator(".add-filter").last.click()
    third = page.locator(".leaf").nth(2)
    third.locator(".filter-type").select_option("attribute")
    third = page.locator(".leaf").nth(2)
    third.locator("input").last.fill("ES")
    expect(page.locator("#live-size")).to_have_attribute("data-size", "2")  # u1, u3
    assert serious_violations(page) == []
    shot(page, f"{language}-03-segment-builder")

    page.locator("#segment-name").fill(f"Trial abandoners in Spain ({language})")
    page.locator("#save-segment").click()
    page.wait_for_url(re.compile(r"/dashboard/segments/[0-9a-f-]{36}$"))
    expect(page.locator("#live-size")).to_have_attribute("data-size", "2")
    page.locator("#explain-id").fill("u5")
    page.locator("#explain-id").press("Enter")
    expect(page.locator("#explanation [role=status]")).to_contain_text("u5")
    assert serious_violations(page) == []
    shot(page, f"{language}-04-segment")

    page.get_by_role("navigation").get_by_role("link", name=w["segments"], exact=True).click()
    row = page.locator("tr", has_text=f"Trial abandoners in Spain ({language})")
    expect(row.locator("td.num")).to_have_text("2")
    shot(page, f"{language}-05-segments")

    segment = f"Trial abandoners in Spain ({language})"
    _campaign_to_the_segment(page, world, container, smtp_sink, w, segment, language)
    _canvas_in_the_editor(page, world, w, segment, language)


def _campaign_to_the_segment(
    page: Page, world: World, container: Container, sink: SmtpSink, w: dict[str, str], segment: str,
    language: str,
) -> None:  # fmt: skip
    page.locator("nav a[href$='/dashboard/campaigns']").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(w["campaigns"])
    page.locator("a[href$='/campaigns/new']").click()
    expect(page.locator("legend", has_text=w["target"])).to_be_visible()
    page.get_by_label(w["campaign_name"]).fill(f"Come back ({language})")
    page.get_by_label(w["segment"]).select_option(label=segment)
    page.get_by_label(w["subject"]).fill("Hola {{${user_id}}}")
    page.get_by_label(w["body"]).fill("<p>{{${user_id}}}, te echamos de menos</p>")
    assert serious_violations(page) == []
    shot(page, f"{language}-11-campaign-form")
    page.get_by_role("button", name=w["create"]).click()
    expect(page.locator("#aud-h")).to_have_text(w["audience"])
    expect(page.locator("#audience-size")).to_have_text("2")  # u1, u3
    page.locator("#campaign-launch").click()
    expect(page.locator("#campaign-launch")).to_have_count(0)
    stop, thread = start_messaging(container)
    try:
        wait_for(lambda: sorted(sink.to()) == ["u1@example.com", "u3@example.com"], timeout=60, what=sink.to)
    finally:
        stop.set()
        thread.join(timeout=30)
    page.reload()
    expect(page.locator("#stat-sent")).to_have_text("2")
    shot(page, f"{language}-12-campaign-launched")
    page.goto(f"{world.url}/dashboard/users?by=external_id&q=u1")
    message = page.locator("tr[data-message]")
    expect(message).to_have_count(1)
    expect(message).to_contain_text(f"Come back ({language})")
    expect(message).to_contain_text(w["delivered"])
    assert serious_violations(page) == []
    shot(page, f"{language}-13-user-messages")


def _canvas_in_the_editor(page: Page, world: World, w: dict[str, str], segment: str, language: str) -> None:
    page.goto(f"{world.url}/dashboard/canvases/new")
    page.get_by_label(w["canvas_name"]).fill(f"Onboarding ({language})")
    page.get_by_label(w["entry"], exact=True).select_option("segment")
    page.get_by_label(w["segment"]).select_option(label=segment)
    expect(page.locator("#n-eevent")).to_be_hidden()  # only the chosen entry's fields show
    page.get_by_label(w["step_name"]).fill("Welcome")
    page.get_by_label(w["from"]).fill("Acme <news@acme.io>")
    page.get_by_label(w["subject"]).fill("Hola")
    page.get_by_label(w["body"]).fill("<p>Hola</p>")
    assert serious_violations(page) == []
    page.get_by_role("button", name=w["create_canvas"]).click()
    page.locator("#add > summary").click()
    add = page.locator("#add form")
    add.get_by_label(w["type"]).select_option("delay")
    add.get_by_label(w["step_name"]).fill("Wait")
    add.get_by_label(w["amount"]).fill("2")
    add.get_by_label(w["amount"]).press("Tab")  # keyboard only from here: the unit, then the button
    page.keyboard.press("ArrowDown")  # hours → days
    add.get_by_role("button", name=w["add_it"]).click()
    expect(page.locator("ol.flow > li")).to_have_count(2)
    expect(page.locator("#step-welcome")).to_contain_text("Wait")
    expect(page.locator("#step-wait")).to_contain_text("48 h")
    page.locator("#step-wait > details > summary").click()
    assert serious_violations(page) == []
    shot(page, f"{language}-14-canvas-editor")
