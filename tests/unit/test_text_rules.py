"""One set of rules for human text (domain/text.py), checked against an independent reading of
the rules, for any string Hypothesis can make."""

from __future__ import annotations

import json
import math
import unicodedata
from datetime import date
from uuid import uuid4

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain import text
from domain.base import Actor, CommandContext, FieldError, ValidationFailed, acting_as
from domain.registration import register_household
from domain.registry import NewMember, RegisterHousehold
from domain.text import IDENTIFIER, KINDS, LINE, NAME, PARAGRAPH, TextKind
from infra.legacy_csv import neutralise

CONTEXT = CommandContext(Actor("op", "operator"), "corr", "cause")
BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
HOSTILE = [
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\x85",
    "\u200b",
    "\u200d",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\uffff",
    "\U0001fffe",
    "\U0010ffff",
    "\ufdd0",
    "\u00ad",
    "\u2028",
    "\u00a0",
    "\u3000",
    "\ud800",
    "\udfff",
]
texts = st.one_of(
    st.text(),
    st.text(st.one_of(st.characters(), st.sampled_from(HOSTILE)), max_size=30),
    st.text(st.sampled_from("Əəİıiİ ŞşĞğÇçÖöÜü\u0301\u0307\t\n\r"), max_size=30),
)


def allowed_by_the_rules(value: str, kind: TextKind) -> bool:
    """The rules as the README states them, written without the implementation."""
    body = value.replace("\r", "") if kind.multiline else value
    for char in body:
        code = ord(char)
        category = unicodedata.category(char)
        if category == "Cs" or 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE:
            return False
        if char in BIDI_CONTROLS:
            return False
        if category == "Cc" and not (kind.multiline and char in "\t\n"):
            return False
        if not kind.multiline and char in "\u2028\u2029":
            return False
        if kind.strict and (
            category in ("Cf", "Co", "Zl", "Zp") or (char.isspace() and char != " ")
        ):
            return False
    return True


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
@settings(max_examples=1000)
@given(value=texts)
@example(value="Məmmədova")
@example(value="e\u0301")
@example(value="\U0010ffff")  # a noncharacter outside the first plane
def test_text_is_accepted_exactly_when_it_keeps_the_rules_and_is_stored_in_nfc(
    kind: TextKind, value: str
) -> None:
    errors: list[FieldError] = []
    cleaned = text.clean(errors, "field", value, kind)
    expected_text = (
        unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
        if allowed_by_the_rules(value, kind)
        else None
    )
    if expected_text is None:
        assert errors and cleaned is None
        return
    if len(expected_text) > kind.max_length:
        assert errors and "at most" in errors[0].reason
        return
    assert not errors
    assert cleaned == (expected_text or None)
    if cleaned is not None:
        assert unicodedata.is_normalized("NFC", cleaned)
        assert "\x00" not in cleaned
        assert json.loads(json.dumps(cleaned)) == cleaned
        cleaned.encode("utf-8")  # no unpaired surrogate
        assert text.clean([], "field", cleaned, kind) == cleaned  # idempotent


@settings(max_examples=1000)
@given(value=texts)
@example(value="abcdeß")
@example(value="ABCDEﬀ")
@example(value=" 5zk2m7p ")
def test_a_fin_is_seven_ascii_letters_or_digits_checked_before_upper_casing(value: str) -> None:
    errors: list[FieldError] = []
    fin = text.clean_fin(errors, "fin", value)
    stripped = value.strip()
    if len(stripped) == 7 and stripped.isascii() and stripped.isalnum():
        assert fin == stripped.upper() and not errors
    else:
        assert fin is None and errors == [FieldError("fin", text.FIN_RULE)]


def test_azerbaijani_letters_fold_as_azerbaijani() -> None:
    assert text.fold("İSMAYILOVA") == "ismayılova"
    assert "kişi" in text.keyword_forms("KİŞİ") and "qadın" in text.keyword_forms("QADIN")
    assert "child" in text.keyword_forms("CHILD")


@given(value=st.one_of(st.floats(), st.integers(), st.text(st.sampled_from([*HOSTILE, "a"]))))
def test_the_last_guard_refuses_what_no_reader_could_hold(value: object) -> None:
    held = (
        (isinstance(value, float) and math.isfinite(value))
        or (isinstance(value, int) and -(2**31) <= value < 2**31)
        or (
            isinstance(value, str)
            and not any(
                unicodedata.category(c) in ("Cs",)
                or (unicodedata.category(c) == "Cc" and c not in "\t\n\r")
                or c in BIDI_CONTROLS
                or ord(c) & 0xFFFE == 0xFFFE  # the last two code points of every plane
                or 0xFDD0 <= ord(c) <= 0xFDEF
                for c in value
            )
        )
    )
    if held:
        assert text.recordable("f", value) is value  # checked, never changed
    else:
        with pytest.raises(ValidationFailed):
            text.recordable("f", value)


def test_no_event_records_text_or_numbers_a_reader_could_not_hold() -> None:
    """Even a command that checks nothing cannot record such an event: the base aggregate's
    last guard refuses it, naming the event's field, and the aggregate is left as it was."""
    with acting_as(CONTEXT):
        _, persons = register_household(
            RegisterHousehold(
                [
                    NewMember(
                        "5ZK2M7P", "Aysel", "Məmmədova", None, date(1984, 3, 12), "female", "head"
                    )
                ],
                "ZAN-002",
                "Bakı",
            ),
            date(2026, 11, 30),
        )
        person = persons[0]
        for reason in ("moved\x00", "\ud800", "\u202eevil"):
            with pytest.raises(ValidationFailed) as refused:
                person.move_to(uuid4(), reason)
            assert refused.value.field == "reason"
        assert person.version == 1 and len(person.pending_events) == 1
        with pytest.raises(ValidationFailed) as refused:  # a date no rule can add years to
            person.record_death(date(2300, 1, 1), None, date(9999, 12, 31))
        assert refused.value.field == "date_of_death" and person.version == 1
        person.move_to(uuid4(), "e\u0301vlilik")  # checked, not changed: the commands clean
        assert person.pending_events[-1].reason == "e\u0301vlilik"  # type: ignore[attr-defined]


def test_every_broken_rule_of_a_registration_is_reported_at_once() -> None:
    with acting_as(CONTEXT), pytest.raises(ValidationFailed) as refused:
        register_household(
            RegisterHousehold(
                [
                    NewMember("abcdeß", "A\u200bysel", "", None, date(1899, 1, 1), "f", "boss"),
                    *[
                        NewMember(
                            f"ZZZZZ{i:02d}",
                            "Rauf",
                            "Əliyev",
                            None,
                            date(1990, 1, 1),
                            "male",
                            "child",
                        )
                        for i in range(3)
                    ],
                ],
                "ZAN-002",
                "Bakı\n2-ci küçə",
                "phone me",
            ),
            date(2026, 11, 30),
        )
    assert {e.field for e in refused.value.errors} == {
        "members[0].fin",
        "members[0].first_name",
        "members[0].last_name",
        "members[0].birth_date",
        "members[0].sex",
        "members[0].relationship",
        "members",
        "current_address",
        "contact_phone",
    }


def test_a_household_has_at_most_thirty_members() -> None:
    members = [
        NewMember(
            f"AAAA{i:03d}",
            "Ad",
            "Soyad",
            None,
            date(1990, 1, 1),
            "male",
            "head" if i == 0 else "child",
        )
        for i in range(31)
    ]
    with acting_as(CONTEXT), pytest.raises(ValidationFailed) as refused:
        register_household(RegisterHousehold(members, "ZAN-002", "Bakı"), date(2026, 11, 30))
    assert refused.value.errors == (FieldError("members", "at most 30 members"),)


@given(st.text())
@example('=HYPERLINK("http://x")')
@example("  +1")
@example("\tcmd")
@example("＝1+1")
def test_no_report_cell_can_run_as_a_spreadsheet_formula(value: str) -> None:
    cell = neutralise(value)
    assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠"))
    assert len(cell) <= 201
    assert not any(ord(c) < 32 and c != "\t" for c in cell)


def test_kinds_are_documented_with_their_limits() -> None:
    assert (NAME.max_length, IDENTIFIER.max_length, LINE.max_length, PARAGRAPH.max_length) == (
        100,
        100,
        500,
        4000,
    )
    assert PARAGRAPH.multiline and not LINE.multiline and NAME.strict and not LINE.strict
