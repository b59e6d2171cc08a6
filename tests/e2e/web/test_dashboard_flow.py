"""The seed flow in a real browser, in English and in Spanish: enable Heap and read its key, import a
cohort over the API, find it in the segment builder, build "Heap Cohorts includes X AND NOT …",
see the exact size, save; and axe-core finds no serious accessibility violation on any screen."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.web.conftest import World, import_cohort, serious_violations, shot, sign_in

WORDS = {
    "en": {"partners": "Technology Partners", "filter": "Heap Cohorts", "includes": "includes",
           "key": "Data Import Key", "endpoint": "REST Endpoint", "segments": "Segments", "not": "Not"},
    "es": {"partners": "Socios tecnológicos", "filter": "Cohortes de Heap", "includes": "incluye",
           "key": "Clave de importación de datos", "endpoint": "Punto final REST", "segments": "Segmentos",
           "not": "No"},
}  # fmt: skip


def _switch_language(page: Page, language: str) -> None:
    page.locator("#language-switch").select_option(language)
    page.locator("#language-switch").locator("xpath=..").get_by_role("button").click()
    expect(page.locator("html")).to_have_attribute("lang", language)


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_seed_flow_in_the_browser(page: Page, world: World, language: str) -> None:
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
