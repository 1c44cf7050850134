"""The console's languages: Azerbaijani (the default) and English.

Labels are gettext messages, written in English in the templates and code and translated in
the catalogs ``locales/<language>/LC_MESSAGES/<page>.po`` (one catalog per page module, so
that pages are translated independently; all are merged at start). Babel reads the catalogs
and carries the CLDR rules: Azerbaijani plural forms (``ngettext``), month names and date
formats. Letters follow Azerbaijani: upper- and lower-case of I/ı and İ/i are their own
(:func:`domain.text.fold` for searches, :func:`upper` for display).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LANGUAGES = ("az", "en")
DEFAULT = "az"
LOCALES = Path(__file__).parent / "locales"
BAKU = ZoneInfo("Asia/Baku")


@cache
def translations(language: str) -> Translations:
    """Every page's catalog for ``language``, merged (English needs none: its messages are
    the message ids, except where an English catalog words them otherwise)."""
    merged = Translations()
    folder = LOCALES / language / "LC_MESSAGES"
    for path in sorted(folder.glob("*.po")) if folder.is_dir() else ():
        with path.open("rb") as source:
            catalog = read_po(source, locale=language, domain=path.stem)
        compiled = io.BytesIO()
        write_mo(compiled, catalog, use_fuzzy=False)
        compiled.seek(0)
        merged.merge(Translations(compiled, domain="messages"))
    return merged


def gettext(language: str) -> Callable[..., str]:
    found = translations(language)

    def translate(message: str, **values: Any) -> str:
        text = found.ugettext(message)
        return text % values if values else text

    return translate


def upper(text: str, language: str = DEFAULT) -> str:
    """Upper case as the language writes it: Azerbaijani i → İ and ı → I."""
    if language == "az":
        text = text.replace("i", "İ").replace("ı", "I")
    return text.upper()


def when(value: Any, language: str, *, time: bool = False) -> str:
    """A date or an instant as the language writes it (instants in Baku time)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                value = date.fromisoformat(value)
            except ValueError:
                return str(value)
    locale = Locale.parse(language)
    if isinstance(value, datetime):
        if time:
            return str(format_datetime(value, "d MMMM y, HH:mm", tzinfo=BAKU, locale=locale))
        value = value.date()
    return str(format_date(value, "d MMMM y", locale=locale))


def number(value: Any, language: str) -> str:
    if value is None:
        return "—"
    return format_decimal(value, locale=Locale.parse(language))


def choose(requested: str | None, remembered: str | None) -> str:
    for language in (requested, remembered):
        if language in LANGUAGES:
            return str(language)
    return DEFAULT
