"""Human text: one set of rules for every way in (HTTP, command line, the legacy import).

Whatever a command accepts is recorded in an event, stored as JSON, published as Avro and
written into PostgreSQL read models. Each of those refuses some text that another accepts
(PostgreSQL refuses NUL in ``text`` and ``jsonb``, UTF-8 has no unpaired surrogates, JSON has no
NaN), so text is checked once, here, before anything is recorded:

- it is Unicode in NFC (normalised, not refused: ``ə`` typed as ``e`` and a combining mark is
  stored as the one letter);
- it holds no NUL or other C0/C1 control character, except tab and line feed in fields that
  are documented as multi-line (there a carriage return becomes a line feed);
- it holds no unpaired surrogate, no noncharacter, and no bidirectional embedding, override
  or isolate (U+202A to U+202E, U+2066 to U+2069);
- names and identifiers also hold no invisible formatting character at all (zero-width
  spaces and joiners, soft hyphen, bidirectional marks, byte order mark), no private-use
  character and no space other than U+0020;
- leading and trailing white space is dropped, and the result is at most the field's
  documented number of characters.

A FIN (national personal id) is exactly seven ASCII letters or digits, checked before it is
upper-cased, so that no Unicode case mapping can turn something else into a FIN (``ß`` upper-
cases to ``SS``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from domain.errors import FieldError, ValidationFailed


@dataclass(frozen=True)
class TextKind:
    """A kind of human text: how long it may be, whether it may span lines, and whether it
    is a name or identifier (stricter: nothing invisible)."""

    name: str
    max_length: int
    multiline: bool = False
    strict: bool = False

    def at_most(self, max_length: int) -> TextKind:
        return dataclasses.replace(self, max_length=max_length)


NAME = TextKind("name", 100, strict=True)
"""Names of people: first name, last name, patronymic; people who took a consent or
witnessed a draw."""
IDENTIFIER = TextKind("identifier", 100, strict=True)
"""References and numbers people write down: document, certificate and unit references,
account numbers, codes, a lottery seed."""
LINE = TextKind("line", 500)
"""One line of free text: an address, a reason, a legal basis, an agency or an employer."""
PARAGRAPH = TextKind("paragraph", 4000, multiline=True)
"""Free text over several lines: notes, justifications, grounds, evidence, text answers."""

KINDS = (NAME, IDENTIFIER, LINE, PARAGRAPH)

# What no text may hold: C0 and C1 controls but tab and line feed (those are line breaks,
# checked per kind), surrogates, noncharacters, and the bidirectional embeddings, overrides and
# isolates that make text display in another order than the stored one.
# Noncharacters: U+FDD0 to U+FDEF, and the last two code points of each of the 17 planes.
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17)
)
_FORBIDDEN = re.compile(
    f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{_NONCHARACTERS}\u202a-\u202e\u2066-\u2069]"
)
_RECORDABLE = re.compile(  # the same, but for tab, line feed and carriage return
    f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff{_NONCHARACTERS}\u202a-\u202e\u2066-\u2069]"
)
_LINE_BREAK = re.compile("[\t\n\r\u2028\u2029]")
_INVISIBLE = frozenset({"Cf", "Co", "Zl", "Zp"})
_PLAIN = frozenset({bool, type(None), UUID})  # nothing in them to check
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)
FIN_PATTERN = re.compile(r"[0-9A-Za-z]{7}")
FIN_RULE = "a FIN is exactly 7 Latin letters or digits"
MAX_TREE_DEPTH = 32
SAFE_INTEGER = 2**53  # every JSON reader holds integers below this exactly
AVRO_INT = 2**31  # Avro's ``int`` is 32-bit signed


def describe(char: str) -> str:
    """A character named without echoing it: it may be invisible, or break the message."""
    return f"U+{ord(char):04X}"


def problem(value: str, kind: TextKind) -> str | None:
    """Why ``value`` breaks the rules of ``kind``, or None when it keeps them."""
    if value.isascii() and value.isprintable():
        return None  # most text: nothing to look for
    if kind.multiline:
        value = value.replace("\r", "")  # CR LF and a lone CR are line feeds
    else:
        line_break = _LINE_BREAK.search(value)
        if line_break is not None:
            return f"must be one line (it contains {describe(line_break.group())})"
    forbidden = _FORBIDDEN.search(value)
    if forbidden is not None:
        return _forbidden_reason(forbidden.group())
    if kind.strict and not value.isascii():
        for char in value:
            if unicodedata.category(char) in _INVISIBLE or (char.isspace() and char != " "):
                return f"must not contain invisible or formatting characters ({describe(char)})"
    return None


def _forbidden_reason(char: str) -> str:
    if "\ud800" <= char <= "\udfff":
        return "contains an unpaired surrogate (not valid Unicode text)"
    return f"must not contain control characters ({describe(char)})"


def normalise(value: str, kind: TextKind) -> str:
    """Valid text as it is stored: NFC, line feeds, no outer white space."""
    if kind.multiline and "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
    return value.strip()


def clean(
    errors: list[FieldError],
    field: str,
    value: Any,
    kind: TextKind,
    *,
    required: str | None = None,
) -> str | None:
    """The value checked and normalised; None when it is empty or broke a rule (the rule is
    then appended to ``errors``). ``required`` is the reason given for an empty value when
    one is needed; without it, an empty value is simply absent."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors.append(FieldError(field, "must be text"))
        return None
    reason = problem(value, kind)
    if reason is not None:
        errors.append(FieldError(field, reason))
        return None
    text = normalise(value, kind)
    if not text:
        if required is not None:
            errors.append(FieldError(field, required))
        return None
    if len(text) > kind.max_length:
        errors.append(FieldError(field, f"at most {kind.max_length} characters"))
        return None
    return text


def required_text(field: str, value: Any, kind: TextKind, reason: str = "required") -> str:
    """One required text field, cleaned, or :class:`ValidationFailed` naming it."""
    errors: list[FieldError] = []
    text = clean(errors, field, value, kind, required=reason)
    if errors or text is None:
        raise ValidationFailed(errors or [FieldError(field, reason)])
    return text


def optional_text(field: str, value: Any, kind: TextKind) -> str | None:
    """One optional text field, cleaned (None when empty), or :class:`ValidationFailed`."""
    errors: list[FieldError] = []
    text = clean(errors, field, value, kind)
    if errors:
        raise ValidationFailed(errors)
    return text


def clean_fin(errors: list[FieldError], field: str, value: Any) -> str | None:
    """A FIN as stored (upper case), or None with the broken rule appended to ``errors``."""
    text = value.strip() if isinstance(value, str) else ""
    if FIN_PATTERN.fullmatch(text) is None:
        errors.append(FieldError(field, FIN_RULE))
        return None
    return text.upper()


def is_fin(value: str) -> bool:
    return FIN_PATTERN.fullmatch(value.strip()) is not None


def fold(text: str) -> str:
    """Case-folding that respects Azerbaijani: I/ı and İ/i are different letters (str.lower()
    would turn İ into i and a combining dot, and I into i). In NFC: a search typed
    decomposed finds what is stored composed."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text.replace("I", "ı").replace("İ", "i").lower().strip()


def keyword_forms(value: str) -> tuple[str, ...]:
    """How a code word typed in any letter case may be meant: as Azerbaijani (``KİŞİ`` is
    ``kişi``, ``QADIN`` is ``qadın``) or as Latin (``CHILD`` is ``child``)."""
    return fold(value), value.strip().lower()


def clean_tree(errors: list[FieldError], field: str, value: Any, depth: int = 0) -> Any:
    """A JSON document (a rule set, a questionnaire) with every string and key checked as
    multi-line text and normalised, every number finite and every integer exact in JSON."""
    if depth > MAX_TREE_DEPTH:
        errors.append(FieldError(field, f"nested more than {MAX_TREE_DEPTH} levels deep"))
        return None
    if isinstance(value, str):
        reason = problem(value, PARAGRAPH)
        if reason is not None:
            errors.append(FieldError(field or "body", reason))
            return None
        cleaned = normalise(value, PARAGRAPH) if not value.isascii() or "\r" in value else value
        if len(cleaned) > PARAGRAPH.max_length:
            errors.append(FieldError(field or "body", f"at most {PARAGRAPH.max_length} characters"))
        return cleaned
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if abs(value) >= SAFE_INTEGER:
            errors.append(FieldError(field or "body", f"integers are at most {SAFE_INTEGER - 1}"))
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            errors.append(FieldError(field or "body", "numbers must be finite"))
        return value
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for number, (key, item) in enumerate(value.items()):
            # A key that breaks the rules is not repeated in the field's name.
            shown = key if isinstance(key, str) and problem(key, IDENTIFIER) is None else None
            name = shown if shown is not None and len(shown) <= 64 else f"<key {number + 1}>"
            at = f"{field}.{name}" if field else name
            if not isinstance(key, str) or problem(key, LINE) is not None or len(key) > 200:
                errors.append(FieldError(at, "a key is one line of at most 200 characters"))
                continue
            out[normalise(key, LINE)] = clean_tree(errors, at, item, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [clean_tree(errors, f"{field}[{i}]", v, depth + 1) for i, v in enumerate(value)]
    errors.append(FieldError(field or "body", f"unexpected {type(value).__name__}"))
    return None


def plain(value: Any) -> bool:
    """Nothing in the value to check: a UUID, a boolean, printable ASCII text."""
    kind = type(value)
    return kind in _PLAIN or (kind is str and value.isascii() and value.isprintable())


def recordable(field: str, value: Any) -> Any:
    """The last guard before an event is recorded, whatever command made it: ``value`` (one
    of the event's fields), unchanged, or :class:`ValidationFailed` naming the part that a
    reader downstream could not hold. Strings may hold tab and line breaks but no other
    control character and no unpaired surrogate; numbers are finite; integers fit Avro's
    32-bit ``int``; dates are between 1900-01-01 and 2199-12-31 (beyond, the years a rule adds
    to one would not exist). It changes nothing: the commands normalise what they clean, and a
    value recorded exactly as given (a lottery seed, whose hash was published) stays so."""
    _check_recordable(field, value)
    return value


def _check_recordable(field: str, value: Any) -> None:
    if type(value) in _PLAIN:
        return
    if isinstance(value, str):
        found = None if value.isascii() and value.isprintable() else _RECORDABLE.search(value)
        if found is not None:
            raise ValidationFailed([FieldError(field, _forbidden_reason(found.group()))])
    elif isinstance(value, date):
        day = value.date() if isinstance(value, datetime) else value
        if not EARLIEST_DATE <= day <= LATEST_DATE:
            raise ValidationFailed(
                [FieldError(field, f"must be between {EARLIEST_DATE} and {LATEST_DATE}")]
            )
    elif isinstance(value, int):
        if not -AVRO_INT <= value < AVRO_INT:
            raise ValidationFailed(
                [FieldError(field, f"must be between {-AVRO_INT} and {AVRO_INT - 1}")]
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationFailed([FieldError(field, "must be a finite number")])
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_recordable(f"{field}[{i}]", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_recordable(f"{field}.<key>", key)
            _check_recordable(f"{field}.{key}" if plain(key) else f"{field}.<key>", item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for name in value.__dataclass_fields__:
            _check_recordable(f"{field}.{name}", getattr(value, name))
