"""Languages: Babel catalogues compiled at start, language negotiation, localized numbers and dates."""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES: tuple[str, ...] = ("en", "es")
DEFAULT = "en"


def N_(message: str) -> str:
    """Mark a string for the catalogue without translating it here."""
    return message


#: Words chosen at run time (roles, connector states, error titles), listed so the catalogue has them.
RUNTIME_WORDS = (
    N_("admin"), N_("marketer"), N_("viewer"),
    N_("active"), N_("paused"), N_("backing_off"), N_("halted"), N_("draft"), N_("archived"),
    N_("bounced"), N_("unsubscribed"), N_("converted"),
    N_("That did not work"), N_("Please sign in"), N_("Not allowed"), N_("Not found"),
    N_("That clashes with something that exists"), N_("Too many attempts"), N_("Something went wrong"),
    N_("Wrong e-mail or password"),
)  # fmt: skip


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of `language` (English is the source language)."""
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == DEFAULT or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def negotiate(accept_language: str | None) -> str:
    """The best supported language for an `Accept-Language` header (English when none fits)."""
    ranked: list[tuple[float, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality + position * 1e-6, tag.strip().lower()))
    for _, tag in sorted(ranked):
        base = tag.split("-")[0]
        if base in LANGUAGES:
            return base
    return DEFAULT


@dataclass(frozen=True, slots=True)
class Formats:
    """Numbers and dates in one language."""

    language: str

    def number(self, value: float | int) -> str:
        """A number with the language's grouping and decimal signs."""
        return numbers.format_decimal(value, locale=self.language)

    def percent(self, value: float) -> str:
        """A fraction as a percentage."""
        return numbers.format_percent(value, locale=self.language)

    def datetime(self, seconds: float | None) -> str:
        """A moment (Unix seconds) as a medium date and time in UTC; an em dash for none."""
        if seconds is None:
            return "—"
        moment = datetime.fromtimestamp(seconds, tz=UTC)
        return dates.format_datetime(moment, format="medium", tzinfo=UTC, locale=self.language) + " UTC"

    def date(self, seconds: float) -> str:
        """A day, short."""
        return dates.format_date(
            datetime.fromtimestamp(seconds, tz=UTC).date(), "d MMM", locale=self.language
        )

    def language_name(self, code: str) -> str:
        """A language's own name (English, español)."""
        return str(Locale.parse(code).get_display_name(code))
