"""Every label the console shows is translated into Azerbaijani: the messages of every
template and page module, extracted as `pybabel extract` would, each have a translation in
one of the catalogs, and each translation keeps its placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir

from api.console import i18n

CONSOLE = Path(i18n.__file__).parent
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "false"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "t": None, "N_": None}


def messages() -> dict[str, tuple[str, int]]:
    found: dict[str, tuple[str, int]] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
        CONSOLE, METHODS, OPTIONS, keywords=KEYWORDS
    ):
        # A plural message is keyed in the catalog by its singular: (singular, 0), (singular, 1).
        for text in message[:1] if isinstance(message, tuple) else (message,):
            if text:
                found.setdefault(text, (filename, line))
    return found


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)s", text))


def test_every_console_message_has_an_azerbaijani_translation() -> None:
    catalog = i18n.translations("az")
    missing = [
        f"{where}:{line}: {text!r}"
        for text, (where, line) in sorted(messages().items(), key=lambda m: m[1])
        if text not in catalog._catalog and (text, 0) not in catalog._catalog
    ]
    assert not missing, "untranslated:\n" + "\n".join(missing)


def test_translations_keep_their_placeholders() -> None:
    catalog = i18n.translations("az")
    broken = [
        text for text in messages() if placeholders(catalog.ugettext(text)) != placeholders(text)
    ]
    assert not broken


def test_azerbaijani_plurals_and_letters() -> None:
    catalog = i18n.translations("az")
    assert catalog.ungettext("%(num)d household", "%(num)d households", 1) % {"num": 1} == (
        "1 ailə"
    )
    assert catalog.ungettext("%(num)d household", "%(num)d households", 5) % {"num": 5} == (
        "5 ailə"
    )
    assert i18n.upper("İsmayıllı", "az") == "İSMAYILLI"
    assert i18n.when("2026-11-30", "az") == "30 noyabr 2026"
