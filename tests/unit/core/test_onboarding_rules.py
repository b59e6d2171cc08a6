"""Pure rules of onboarding: the REST endpoint choice, key values, fingerprints, URLs, CLI layout."""

from __future__ import annotations

import pytest

from cohorthub import keys
from cohorthub.api.middleware import collapse_slashes
from cohorthub.cli.output import render
from cohorthub.cli.serve import listen_url
from cohorthub.config import configured_public_url
from cohorthub.partners.model import choose_rest_endpoint, key_value_problem
from cohorthub.store.db import describe_url, parse_url
from cohorthub.store.errors import InvalidDatabaseUrl


def test_the_configured_public_url_wins_then_what_serve_recorded() -> None:
    pick = choose_rest_endpoint
    assert (
        pick(configured="https://a/", recorded_public="https://b", recorded_listen="http://c").url
        == "https://a"
    )
    assert pick(configured=None, recorded_public="https://b", recorded_listen="http://c").url == "https://b"
    assert pick(configured=None, recorded_public=None, recorded_listen="http://c:1").url == "http://c:1"
    assert pick(configured=None, recorded_public=None, recorded_listen=None).url is None
    assert configured_public_url({"COHORTHUB_PUBLIC_URL": "https://x/"}) == "https://x"
    assert configured_public_url({}) is None


@pytest.mark.parametrize(
    ("value", "ok"),
    [("0123456789abcdef", True), ("short", False), ("with space 0123456789", False), ("x" * 257, False)],
)
def test_partner_key_values(value: str, ok: bool) -> None:
    assert (key_value_problem(value) is None) is ok


def test_a_fingerprint_is_the_start_of_the_stored_hash() -> None:
    assert keys.fingerprint("k" * 20) == keys.hash_key("k" * 20)[:16]
    assert keys.fingerprint("k" * 20) != keys.fingerprint("k" * 21)


def test_repeated_slashes_collapse() -> None:
    assert collapse_slashes("//partners//segment/cohorts") == "/partners/segment/cohorts"


def test_listen_urls() -> None:
    assert listen_url("127.0.0.1", 8123) == "http://127.0.0.1:8123"
    assert listen_url("::1", 80) == "http://[::1]:80"
    assert not listen_url("0.0.0.0", 80).startswith("http://0.0.0.0")


@pytest.mark.parametrize("url", ["foo://bar", "notaurl", "mysql://u:pw@h/db", "sqlite:///", ""])
def test_unusable_database_urls_are_one_line_errors_without_password(url: str) -> None:
    with pytest.raises(InvalidDatabaseUrl) as info:
        parse_url(url)
    assert "\n" not in info.value.message and "postgresql://" in info.value.message
    assert "pw" not in info.value.message


def test_database_urls_are_shown_absolute_and_without_password() -> None:
    assert describe_url("sqlite:///var/x.sqlite").startswith("sqlite:////")
    assert describe_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"


ROW = {"id": "eaabb62b1aa442568797a10abb1f6fa6", "url": "http://127.0.0.1:9000/a/long/path/" + "x" * 30}


def test_one_item_is_a_record_with_every_value_whole() -> None:
    lines = render(ROW, width=80)
    assert lines == [f"id   {ROW['id']}", f"url  {ROW['url']}"]


def test_several_items_are_a_table_when_it_fits_else_records() -> None:
    narrow = [{"id": "a", "n": 1}, {"id": "b", "n": None}]
    assert render(narrow, width=80, title="T") == ["T (2)", "id  n", "--  -", "a   1", "b   -"]
    wide = render([ROW, ROW], width=80)
    assert all(len(line) <= 80 or ROW["url"] in line for line in wide)
    assert sum(ROW["id"] in line for line in wide) == 2
