"""Languages: negotiation from Accept-Language, localized formats, and a complete Spanish catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from cohorthub.web import i18n

WEB = Path(i18n.__file__).parent
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]


@pytest.mark.parametrize(
    ("header", "language"),
    [("es-ES,es;q=0.9,en;q=0.8", "es"), ("en-US,en;q=0.9", "en"), ("fr-FR,es;q=0.5", "es"),
     ("de", "en"), ("", "en"), (None, "en"), ("en;q=0.2, es;q=0.8", "es"), ("es;q=bad", "en")],
)  # fmt: skip
def test_the_language_comes_from_accept_language(header: str | None, language: str) -> None:
    assert i18n.negotiate(header) == language


def test_numbers_and_dates_are_localized() -> None:
    assert i18n.Formats("en").number(1234567) == "1,234,567"
    assert i18n.Formats("es").number(1234567) == "1.234.567"
    assert i18n.Formats("es").datetime(0).startswith("1 ene 1970")
    assert i18n.Formats("en").datetime(None) == "—"


def _messages() -> set[str]:
    keywords = {"_": None, "gettext": None, "N_": None}
    found = extract_from_dir(str(WEB), METHODS, keywords=keywords)
    return {message for _file, _line, message, _comments, _context in found if isinstance(message, str)}


def test_every_dashboard_string_has_a_spanish_translation_with_the_same_placeholders() -> None:
    spanish = i18n.translations("es")
    messages = _messages()
    assert len(messages) > 150
    for message in sorted(messages):
        translated = spanish.gettext(message)
        assert translated, message
        assert sorted(re.findall(r"%\(\w+\)s", translated)) == sorted(re.findall(r"%\(\w+\)s", message)), (
            message
        )
    assert spanish.gettext("Heap Cohorts") == "Heap Cohorts"  # built from "%(partner)s Cohorts"
    assert spanish.gettext("%(partner)s Cohorts") % {"partner": "Heap"} == "Cohortes de Heap"
    assert spanish.gettext("includes") == "incluye"
